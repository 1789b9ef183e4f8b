"""What the App keeps in the job store: the deliveries it accepted, and the GitHub side of each job."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

# Every accepted delivery, by X-GitHub-Delivery: a second delivery with the same id is a replay.
deliveries = Table(
    "github_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event", String(64), nullable=False),
    Column("action", String(64)),
    Column("payload", JSON, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending, done, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try", Float, nullable=False, default=0.0),
    Column("outcome", Text),
)

# One row per job started from GitHub: where it answers, and how far its delivery went.
github_jobs = Table(
    "github_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("delivery_id", String(64), unique=True),
    Column("installation", BigInteger, nullable=False),
    Column("repo", String(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("is_pull", Boolean, nullable=False),
    Column("requested_by", String(255), nullable=False),
    Column("title", Text, nullable=False),
    Column("clone_url", Text, nullable=False),
    Column("push_to", String(255)),  # a follow-up's pull request branch
    Column("comment_id", BigInteger),
    Column("comment_text", Text),
    Column("waiting_noted", Boolean, nullable=False, default=False),
    Column("done", Boolean, nullable=False, default=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try", Float, nullable=False, default=0.0),
    Column("outcome", Text),
)


class Delivery(BaseModel):
    id: str
    event: str
    action: str | None
    payload: dict[str, Any]
    received_at: float
    state: str
    attempts: int
    outcome: str | None


class GitHubJob(BaseModel):
    job_id: str
    delivery_id: str | None
    installation: int
    repo: str
    number: int
    is_pull: bool
    requested_by: str
    title: str
    clone_url: str
    push_to: str | None
    comment_id: int | None
    comment_text: str | None
    waiting_noted: bool
    done: bool
    attempts: int
    outcome: str | None


class Records:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    # -- deliveries -----------------------------------------------------------------

    def accept(self, delivery_id: str, event: str, action: str | None, payload: dict[str, Any]) -> bool:
        """Keep a delivery for the desk; False if one with this id came before (a replay)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(deliveries).values(id=delivery_id, event=event, action=action, payload=payload,
                                                       received_at=time.time(), state="pending", attempts=0,
                                                       next_try=0.0))
        except IntegrityError:
            return False
        return True

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return Delivery.model_validate(row._asdict()) if row else None

    def pending(self) -> list[Delivery]:
        """Deliveries due for (another) try, oldest first."""
        query = (select(deliveries).where(deliveries.c.state == "pending", deliveries.c.next_try <= time.time())
                 .order_by(deliveries.c.received_at))
        with self.engine.connect() as conn:
            return [Delivery.model_validate(row._asdict()) for row in conn.execute(query)]

    def settle(self, delivery_id: str, state: str, outcome: str) -> None:
        self._update_delivery(delivery_id, state=state, outcome=outcome, attempts=deliveries.c.attempts + 1)

    def retry_later(self, delivery_id: str, problem: str, pause: float) -> None:
        self._update_delivery(delivery_id, outcome=problem, attempts=deliveries.c.attempts + 1,
                              next_try=time.time() + pause)

    def _update_delivery(self, delivery_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))

    # -- jobs -----------------------------------------------------------------------

    def add_job(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(github_jobs).values(waiting_noted=False, done=False, attempts=0, next_try=0.0,
                                                    **values))

    def job(self, job_id: str) -> GitHubJob | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(github_jobs).where(github_jobs.c.job_id == job_id)).first()
        return GitHubJob.model_validate(row._asdict()) if row else None

    def job_for_delivery(self, delivery_id: str) -> GitHubJob | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(github_jobs).where(github_jobs.c.delivery_id == delivery_id)).first()
        return GitHubJob.model_validate(row._asdict()) if row else None

    def jobs_in(self, repo: str, number: int) -> list[GitHubJob]:
        """The jobs started from one issue or pull request, newest first."""
        query = (select(github_jobs).where(github_jobs.c.repo == repo, github_jobs.c.number == number)
                 .order_by(github_jobs.c.job_id.desc()))
        with self.engine.connect() as conn:
            return [GitHubJob.model_validate(row._asdict()) for row in conn.execute(query)]

    def active(self) -> list[GitHubJob]:
        """Jobs whose outcome is not delivered yet and that are due for a look."""
        query = (select(github_jobs).where(github_jobs.c.done.is_(False), github_jobs.c.next_try <= time.time())
                 .order_by(github_jobs.c.job_id))
        with self.engine.connect() as conn:
            return [GitHubJob.model_validate(row._asdict()) for row in conn.execute(query)]

    def update_job(self, job_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(github_jobs).where(github_jobs.c.job_id == job_id).values(**values))
