"""The event log: every step of every agent, appended once and read by the CLI, the TUI and the logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, insert, select

from orchestrator.store.db import events


class Event(BaseModel):
    id: int | None = None
    job_id: str
    kind: str = Field(description="e.g. job.submitted, plan.ready, subtask.status, agent.tool_call, test.result")
    subtask: str | None = None
    role: str | None = None
    agent: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    ts: float = Field(default_factory=time.time)


class EventLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def append(self, event: Event) -> Event:
        row = event.model_dump(exclude={"id"})
        with self.engine.begin() as conn:
            result = conn.execute(insert(events).values(**row))
        return event.model_copy(update={"id": result.inserted_primary_key[0]})

    def emit(self, job_id: str, kind: str, **fields: Any) -> Event:
        return self.append(Event(job_id=job_id, kind=kind, **fields))

    def list(self, job_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        query = select(events).where(events.c.job_id == job_id, events.c.id > after).order_by(events.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [Event.model_validate(row._asdict()) for row in conn.execute(query)]

    def follow(self, job_id: str, after: int = 0, poll: float = 0.2, until: Any = None) -> Iterator[Event]:
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
