"""What the App keeps in the job store: the deliveries it accepted, the GitHub side of each job, and the
pull requests whose checks it looks after."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from orchestrator.store.db import add_missing_columns, jobs

metadata = sa.MetaData()

# Every accepted delivery, by X-GitHub-Delivery: a second delivery with the same id is a replay.
deliveries = sa.Table(
    "github_deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64)),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),  # pending, done, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", sa.Float, nullable=False, default=0.0),
    sa.Column("outcome", sa.Text),
)

# One row per job started from GitHub: where it answers, and how far its delivery went.
github_jobs = sa.Table(
    "github_jobs",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("delivery_id", sa.String(64), unique=True),
    sa.Column("installation", sa.BigInteger, nullable=False),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("is_pull", sa.Boolean, nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("clone_url", sa.Text, nullable=False),
    sa.Column("push_to", sa.String(255)),  # a follow-up's pull request branch
    sa.Column("comment_id", sa.BigInteger),
    sa.Column("comment_text", sa.Text),
    sa.Column("waiting_noted", sa.Boolean, nullable=False, default=False),
    sa.Column("done", sa.Boolean, nullable=False, default=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", sa.Float, nullable=False, default=0.0),
    sa.Column("outcome", sa.Text),  # the last word, once the result is published (or could not be)
    sa.Column("notice", sa.Text),  # a comment for the requester still to be posted
)

# A pull request the App opened, whose failing checks it fixes (`[ci]` in .shipyard.toml).
github_ci = sa.Table(
    "github_ci",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),  # the job that opened the pull request
    sa.Column("installation", sa.BigInteger, nullable=False),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False, index=True),
    sa.Column("pull_number", sa.Integer),  # None until the pull request is open
    sa.Column("max_rounds", sa.Integer, nullable=False),
    sa.Column("rounds", sa.Integer, nullable=False, default=0),
    sa.Column("fix_job", sa.String(64)),  # the follow-up job fixing the checks now
    sa.Column("failing", sa.JSON, nullable=False),  # check name -> the sha it failed on
    sa.Column("story", sa.JSON, nullable=False),  # what happened, a line each, for the status comment
    sa.Column("over", sa.Boolean, nullable=False, default=False),
)

DAY = 86_400.0
# GitHub redelivers (by a person's "Redeliver", or its API) deliveries of the past three days: their ids are
# kept at least that long. Ignored deliveries, most of them echoes of the App's own comments and edits, are
# kept no longer; the rest for DELIVERIES_KEPT, then pruned (`prune`).
REDELIVERY_WINDOW = 3 * DAY
DELIVERIES_KEPT = 30 * DAY
IGNORED = "ignored: "


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
    notice: str | None


class CIWatch(BaseModel):
    job_id: str
    installation: int
    repo: str
    branch: str
    pull_number: int | None
    max_rounds: int
    rounds: int
    fix_job: str | None
    failing: dict[str, str]
    story: list[str]
    over: bool


class Records:
    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time):
        self.engine = engine
        self.clock = clock
        metadata.create_all(engine)
        _add_new_columns(engine, github_jobs)

    # -- deliveries -----------------------------------------------------------------

    def accept(self, delivery_id: str, event: str, action: str | None, payload: dict[str, Any]) -> bool:
        """Keep a delivery for the desk; False if one with this id came before (a replay), unless that one
        was given up: GitHub's Redeliver of it is a new try, from the start."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(deliveries).values(id=delivery_id, event=event, action=action, payload=payload,
                                                          received_at=self.clock(), state="pending", attempts=0,
                                                          next_try=0.0))
        except IntegrityError:
            with self.engine.begin() as conn:  # one statement: of two redeliveries at once, one revives it
                revived = conn.execute(sa.update(deliveries).where(deliveries.c.id == delivery_id,
                                                                   deliveries.c.state == "failed")
                                       .values(state="pending", attempts=0, next_try=0.0, received_at=self.clock()))
            return revived.rowcount == 1
        return True

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return Delivery.model_validate(row._asdict()) if row else None

    def pending(self) -> list[Delivery]:
        """Deliveries due for (another) try, oldest first."""
        query = (sa.select(deliveries).where(deliveries.c.state == "pending", deliveries.c.next_try <= self.clock())
                 .order_by(deliveries.c.received_at))
        with self.engine.connect() as conn:
            return [Delivery.model_validate(row._asdict()) for row in conn.execute(query)]

    def settle(self, delivery_id: str, state: str, outcome: str) -> None:
        self._update_delivery(delivery_id, state=state, outcome=outcome, attempts=deliveries.c.attempts + 1)

    def retry_later(self, delivery_id: str, problem: str, pause: float, counted: bool = True) -> None:
        """Try the delivery again after `pause`; `counted` as one of its tries, or not (a wait GitHub asked for)."""
        attempts = deliveries.c.attempts + (1 if counted else 0)
        self._update_delivery(delivery_id, outcome=problem, attempts=attempts, next_try=self.clock() + pause)

    def _update_delivery(self, delivery_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(deliveries).where(deliveries.c.id == delivery_id).values(**values))

    # -- jobs -----------------------------------------------------------------------

    def add_job(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(github_jobs).values(waiting_noted=False, done=False, attempts=0, next_try=0.0,
                                                       **values))

    def job(self, job_id: str) -> GitHubJob | None:
        return self._one_job(github_jobs.c.job_id == job_id)

    def job_for_delivery(self, delivery_id: str) -> GitHubJob | None:
        return self._one_job(github_jobs.c.delivery_id == delivery_id)

    def jobs_in(self, repo: str, number: int) -> list[GitHubJob]:
        """The jobs started from one issue or pull request, newest first."""
        query = (sa.select(github_jobs).where(github_jobs.c.repo == repo, github_jobs.c.number == number)
                 .order_by(github_jobs.c.job_id.desc()))
        with self.engine.connect() as conn:
            return [GitHubJob.model_validate(row._asdict()) for row in conn.execute(query)]

    def active(self) -> list[GitHubJob]:
        """Jobs whose outcome is not delivered yet and that are due for a look."""
        query = (sa.select(github_jobs).where(github_jobs.c.done.is_(False), github_jobs.c.next_try <= self.clock())
                 .order_by(github_jobs.c.job_id))
        with self.engine.connect() as conn:
            return [GitHubJob.model_validate(row._asdict()) for row in conn.execute(query)]

    def update_job(self, job_id: str, **values: Any) -> GitHubJob:
        """Change the job's row; the row as it is now."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(github_jobs).where(github_jobs.c.job_id == job_id).values(**values))
        found = self.job(job_id)
        assert found is not None, job_id
        return found

    def close_installation(self, installation: int) -> None:
        """The App was uninstalled: nothing of its jobs there can be said on GitHub any more."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(github_jobs).where(github_jobs.c.installation == installation,
                                                      github_jobs.c.done.is_(False)).values(done=True))
            conn.execute(sa.update(github_ci).where(github_ci.c.installation == installation).values(over=True))

    def _one_job(self, condition: Any) -> GitHubJob | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(github_jobs).where(condition)).first()
        return GitHubJob.model_validate(row._asdict()) if row else None

    # -- pull requests whose checks the App looks after -------------------------------

    def watch(self, job_id: str, installation: int, repo: str, branch: str, max_rounds: int) -> None:
        """Look after the checks of the pull request the job is about to open from `branch` (idempotent)."""
        if self.watch_of(job_id) is None:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(github_ci).values(job_id=job_id, installation=installation, repo=repo,
                                                         branch=branch, max_rounds=max_rounds, rounds=0, failing={},
                                                         story=[], over=False))

    def watch_of(self, job_id: str) -> CIWatch | None:
        return self._one_watch(github_ci.c.job_id == job_id)

    def watch_on(self, repo: str, branches: list[str]) -> CIWatch | None:
        """The watch of a pull request from one of `branches` of `repo`."""
        return self._one_watch((github_ci.c.repo == repo) & github_ci.c.branch.in_(branches)) if branches else None

    def watch_fixed_by(self, fix_job: str) -> CIWatch | None:
        return self._one_watch(github_ci.c.fix_job == fix_job)

    def update_watch(self, job_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(github_ci).where(github_ci.c.job_id == job_id).values(**values))

    def _one_watch(self, condition: Any) -> CIWatch | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(github_ci).where(condition)).first()
        return CIWatch.model_validate(row._asdict()) if row else None

    # -- retention --------------------------------------------------------------------

    def prune(self, older_than: float = DELIVERIES_KEPT) -> int:
        """Forget settled deliveries received more than `older_than` seconds ago (never within GitHub's
        redelivery window), ignored ones once that window has passed, and the GitHub side of jobs that are
        gone; how many rows went."""
        now = self.clock()
        settled = deliveries.c.state.in_(("done", "failed"))
        old = deliveries.c.received_at < now - max(older_than, REDELIVERY_WINDOW)
        ignored = (deliveries.c.state == "done") & deliveries.c.outcome.startswith(IGNORED)
        with self.engine.begin() as conn:
            gone = conn.execute(sa.delete(deliveries).where(settled, old)).rowcount
            gone += conn.execute(sa.delete(deliveries).where(
                ignored, deliveries.c.received_at < now - REDELIVERY_WINDOW)).rowcount
            for table in (github_jobs, github_ci):
                job_exists = sa.select(jobs.c.id).where(jobs.c.id == table.c.job_id).exists()
                gone += conn.execute(sa.delete(table).where(~job_exists)).rowcount
        return gone


def prune_github(engine: sa.Engine, older_than: float = DELIVERIES_KEPT) -> int:
    """What `shipyard prune` calls: the App's retention rule on the job store (see Records.prune)."""
    return Records(engine).prune(older_than)


def _add_new_columns(engine: sa.Engine, table: sa.Table) -> None:
    """Add the columns this version has and an older table lacks; all of them are nullable, so old rows
    stay valid."""
    add_missing_columns(engine, table.name, {c.name: c.type.compile(engine.dialect) for c in table.columns})
