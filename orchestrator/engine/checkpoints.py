"""The job graphs' checkpoints: SQLite in the state dir, or PostgreSQL beside the job store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from psycopg import Connection
from psycopg.rows import dict_row

from agents.loop import AgentOutcome
from agents.plan import Plan, PlanOption, PlanOptions, ReviewVerdict, SentBack, Subtask
from agents.test_discovery import TestCommand
from agents.usage import UsageTotals
from orchestrator.config.settings import Settings
from orchestrator.engine.campaign import JournalEntry
from orchestrator.engine.state import SubtaskResult, TestRun
from orchestrator.engine.subtask import StageResult
from orchestrator.engine.test_comparison import TestComparison
from orchestrator.engine.test_results import TestReport
from orchestrator.engine.verifier import Measurement
from orchestrator.store.db import is_postgres, libpq_url, store_url

# The types a checkpoint may hold; LangGraph refuses to revive any others.
CHECKPOINTED_TYPES = (Plan, Subtask, ReviewVerdict, TestRun, SubtaskResult, StageResult, AgentOutcome, UsageTotals,
                      PlanOption, PlanOptions, Measurement, JournalEntry, TestCommand, TestReport, TestComparison,
                      SentBack)
SERDE = JsonPlusSerializer(allowed_msgpack_modules=[(t.__module__, t.__name__) for t in CHECKPOINTED_TYPES])


@contextmanager
def checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver[Any]]:
    """The job graphs' checkpointer on its own connection, shared by the graph's worker threads:
    PostgreSQL when the store is there (any worker may resume any job), else SQLite in the state dir."""
    url = store_url(settings)
    if is_postgres(url):
        yield from _postgres_checkpointer(libpq_url(url))
        return
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(settings.state_dir / "checkpoints.db"), check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # As the job store: in WAL mode a commit survives the process being killed without waiting for an
        # fsync (only an OS crash can lose the last ones); a fan-out writes checkpoints from every branch.
        conn.execute("PRAGMA synchronous=NORMAL")
        yield SqliteSaver(conn, serde=SERDE)
    finally:
        conn.close()


# Any constant: it names the advisory lock under which the checkpoint tables are set up.
_SETUP_LOCK = 0x5159_7A7D
_set_up: set[str] = set()


def _postgres_checkpointer(url: str) -> Iterator[BaseCheckpointSaver[Any]]:
    with Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        saver = PostgresSaver(conn, serde=SERDE)
        if url not in _set_up:
            _setup_once(conn, saver)
            _set_up.add(url)
        yield saver


def _setup_once(conn: Connection[Any], saver: PostgresSaver) -> None:
    # Workers starting together would race to create the tables: one at a time. Waiting
    # by polling, not in pg_advisory_lock, because the setup's CREATE INDEX CONCURRENTLY
    # waits for every open transaction, a blocked lock request included: a deadlock.
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SETUP_LOCK,)).fetchone()["ok"]:
        time.sleep(0.05)
    try:
        saver.setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
