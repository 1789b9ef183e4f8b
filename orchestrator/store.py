"""The job store: one database (SQLite by default, PostgreSQL for many machines) holding jobs and events.

SQLAlchemy Core gives one code path for both databases.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import JSON, Column, Engine, Float, Integer, MetaData, String, Table, Text, create_engine, event

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(32), nullable=False, index=True),
    Column("task", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("report", JSON),
    Column("error", Text),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False, index=True),
    Column("subtask", String(64)),
    Column("role", String(32)),
    Column("agent", String(128)),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("ts", Float, nullable=False),
)


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'shipyard.db'}"


def open_store(url: str) -> Engine:
    """An engine on `url` with the tables created."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    metadata.create_all(engine)
    return engine


def _tune_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the TUI and `shipyard logs --follow` read while a runner writes; the
    # busy timeout turns a briefly locked database into a wait instead of an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
