"""The job store: one database (SQLite by default, PostgreSQL for many machines) holding jobs and events.

SQLAlchemy Core gives one code path for both databases.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from orchestrator.config.settings import ConfigError, Settings

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
    # The settings the job was submitted with: every process that runs it runs it with these.
    Column("settings", JSON),
    # The process running the job now (host:pid:nonce) and its last heartbeat: one runner at a time.
    Column("holder", String(255)),
    Column("held_at", Float),
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
    # The version of orchestrator.store.events that wrote the payload (rows from before it: 1).
    Column("v", Integer, nullable=False, server_default="1"),
)


# Workers alive: each beats here; a row whose beat is older than the lease is a dead worker.
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

# `shipyard inbox`: what the director should look at (a job finished, failed or waits for them).
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("read", Boolean, nullable=False, default=False),
)


class StoreError(ConfigError):
    """The database named by the configuration cannot be used."""


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'shipyard.db'}"


def store_url(settings: Settings) -> str:
    """The configured database, or SQLite in the state dir."""
    return settings.database_url or sqlite_url(settings.state_dir)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:"))


def open_store(url: str) -> Engine:
    """An engine on `url` with the tables created; StoreError if it is not a usable database."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif not is_postgres(url):
        raise StoreError(f"unsupported database URL '{_masked(url)}': use postgresql://... or sqlite:///PATH")
    try:
        engine = create_engine(psycopg_url(url) if is_postgres(url) else url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _tune_sqlite)
        metadata.create_all(engine)
        _add_missing_columns(engine)
    except (OperationalError, ArgumentError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"cannot use the database {_masked(url)}: {reason}") from None
    return engine


# Columns added since a store could first be made, with the SQL type that adds them to an older table.
_ADDED_COLUMNS = {
    "events": {"v": "INTEGER NOT NULL DEFAULT 1"},
    "jobs": {"settings": "JSON", "holder": "VARCHAR(255)", "held_at": "FLOAT"},
}


def _add_missing_columns(engine: Engine) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        add_missing_columns(engine, table, columns)


def add_missing_columns(engine: Engine, table: str, columns: dict[str, str]) -> None:
    """Add those of `columns` (name -> the SQL type that adds it) that an older `table` lacks: `create_all`
    makes missing tables, never missing columns. Safe when several processes start at once."""
    for name, sql_type in columns.items():
        if name in _columns(engine, table):
            continue
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
        except DBAPIError:
            if name not in _columns(engine, table):  # else another process added it first
                raise


def _columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


def psycopg_url(url: str) -> str:
    # SQLAlchemy's default PostgreSQL driver is psycopg2; Shipyard ships psycopg 3.
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The plain postgresql:// form that psycopg itself (the checkpointer, DBOS) takes."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _tune_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the TUI and `shipyard logs --follow` read while a runner writes; the
    # busy timeout turns a briefly locked database into a wait instead of an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
