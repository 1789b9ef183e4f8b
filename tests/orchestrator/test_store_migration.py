"""A store made by an older version opens in this one: the columns added since are added, old rows stay."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect, select

from orchestrator.apps.github.records import Records, github_jobs
from orchestrator.store.db import events, jobs, open_store

# The tables as the first versions made them (without the columns added since).
OLD_SCHEMA = """
CREATE TABLE jobs (id VARCHAR(64) PRIMARY KEY, status VARCHAR(32) NOT NULL, task JSON NOT NULL,
                   created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, report JSON, error TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id VARCHAR(64) NOT NULL, subtask VARCHAR(64),
                     role VARCHAR(32), agent VARCHAR(128), kind VARCHAR(64) NOT NULL, payload JSON NOT NULL,
                     tokens INTEGER NOT NULL DEFAULT 0, cost FLOAT NOT NULL DEFAULT 0, ts FLOAT NOT NULL);
CREATE TABLE github_jobs (job_id VARCHAR(64) PRIMARY KEY, delivery_id VARCHAR(64) UNIQUE,
                          installation BIGINT NOT NULL, repo VARCHAR(255) NOT NULL, number INTEGER NOT NULL,
                          is_pull BOOLEAN NOT NULL, requested_by VARCHAR(255) NOT NULL, title TEXT NOT NULL,
                          clone_url TEXT NOT NULL);
INSERT INTO jobs VALUES ('old-job', 'succeeded', '{"instruction": "x", "repo": "/r"}', 1.0, 2.0, NULL, NULL);
INSERT INTO events (job_id, kind, payload, ts) VALUES ('old-job', 'job.submitted', '{}', 1.0);
INSERT INTO github_jobs VALUES ('old-job', 'd1', 1, 'o/r', 7, 0, 'mona', 'Fix it', 'https://x/o/r.git');
"""


def test_an_older_store_gets_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)

    engine = open_store(f"sqlite:///{path}")
    Records(engine)
    Records(engine)  # a second process starting finds them there

    columns = {table: {c["name"] for c in inspect(engine).get_columns(table)} for table in ("jobs", "events")}
    assert {c.name for c in jobs.columns} <= columns["jobs"]
    assert {c.name for c in events.columns} <= columns["events"]
    assert {c.name for c in github_jobs.columns} <= {c["name"] for c in inspect(engine).get_columns("github_jobs")}
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.status, jobs.c.holder).where(jobs.c.id == "old-job")).one() == (
            "succeeded", None)
        assert conn.execute(select(events.c.v).where(events.c.job_id == "old-job")).scalar_one() == 1
        assert conn.execute(select(github_jobs.c.repo, github_jobs.c.notice)).one() == ("o/r", None)
