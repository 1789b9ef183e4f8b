"""The event log: every step of every agent, appended once and read by every front end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from sqlalchemy import Engine, func, insert, select, text

from orchestrator.store.db import events
from orchestrator.store.events import Event, from_row, kind_of, to_row

# Readers follow the log by id (`list(after=...)`, `since`): an id must never become visible after a higher
# one. PostgreSQL hands out a sequence's ids at insert, not at commit, so two appenders could commit out of
# order and a reader past the higher id would never see the lower one. Appends there take this transaction
# lock first: ids are drawn, and committed, one appender at a time. (SQLite's write lock already does that.)
_APPEND_LOCK = text("SELECT pg_advisory_xact_lock(5347)")


class EventLog:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._serialize = engine.dialect.name == "postgresql"

    def append(self, event: Event) -> Event:
        """Store `event` (its job_id set); the stored event, with its id."""
        if not event.job_id:
            raise ValueError(f"a {event.kind} event without a job id")
        with self.engine.begin() as conn:
            if self._serialize:
                conn.execute(_APPEND_LOCK)
            result = conn.execute(insert(events).values(**to_row(event)))
        return event.model_copy(update={"id": result.inserted_primary_key[0]})

    def list(self, job_id: str, after: int = 0, limit: int | None = None,
             kinds: tuple[type[Event], ...] = ()) -> list[Event]:
        """The job's events after id `after`, oldest first; only of the given classes, when given."""
        query = select(events).where(events.c.job_id == job_id, events.c.id > after).order_by(events.c.id)
        if kinds:
            query = query.where(events.c.kind.in_(kind_of(*kinds)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [from_row(row._asdict()) for row in conn.execute(query)]

    def since(self, after: int, limit: int | None = None) -> list[Event]:
        """Every job's events after id `after`, oldest first."""
        query = select(events).where(events.c.id > after).order_by(events.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [from_row(row._asdict()) for row in conn.execute(query)]

    def latest(self) -> int:
        """The id of the newest event of any job (0 when there is none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())

    def has(self, job_id: str, kind: type[Event]) -> bool:
        query = select(events.c.id).where(events.c.job_id == job_id, events.c.kind.in_(kind_of(kind))).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def spent(self, job_id: str) -> float:
        """USD spent on the job's model calls so far, by every process that ever ran it."""
        query = select(func.coalesce(func.sum(events.c.cost), 0.0)).where(events.c.job_id == job_id)
        with self.engine.connect() as conn:
            return float(conn.execute(query).scalar_one())

    def follow(self, job_id: str, after: int = 0, poll: float = 0.2,
               until: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Events as they are appended; stops once `until()` is true and nothing new is left."""
        while True:
            batch = self.list(job_id, after)
            yield from batch
            if batch:
                after = batch[-1].id or after
            elif until is not None and until():
                return
            else:
                time.sleep(poll)
