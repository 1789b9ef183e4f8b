"""The desk: turns stored deliveries into jobs, keeps each job's status comment current, delivers results.

It runs as one thread beside the webhook endpoint, so a slow GitHub or a slow fetch never
delays an answer to GitHub. Everything it works from is in the store (deliveries, the
GitHub side of jobs, the jobs' events), so after a restart it carries on where it was.
It never sleeps on GitHub's rate limits: what must wait for them is put off, and the rest goes on.

A finished job goes through two steps, each kept in the store and tried again on its own:
publishing (publish.py: push, pull request) and reporting (the requester's notice, the status
comment's last word). Every comment the desk posts is keyed (client.py), so no try posts one twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

from orchestrator.apps.github.ci import CIDesk
from orchestrator.apps.github.client import GitHub, NotFound, PullInfo
from orchestrator.apps.github.git_remote import AppGit
from orchestrator.apps.github.instructions import instruction, trusted_authors
from orchestrator.apps.github.jobs_api import JobsAPI
from orchestrator.apps.github.payloads import parse_event
from orchestrator.apps.github.publish import Published, Publisher, unpublished
from orchestrator.apps.github.rate_limits import RateLimited
from orchestrator.apps.github.records import IGNORED, Delivery, GitHubJob, Records
from orchestrator.apps.github.repo_config import FILE_NAME, RepoConfigError, parse_repo_config
from orchestrator.apps.github.status import defuse, status_comment
from orchestrator.apps.github.triggers import (
    Approve,
    CheckResult,
    Ignore,
    InstallationChanged,
    Intent,
    Refusal,
    Reject,
    Replan,
    Run,
    Thread,
    TopUp,
    interpret,
)
from orchestrator.config.settings import Settings
from orchestrator.runtime.director import JobStateError
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Campaign, Job, JobStatus, Task
from sandboxes.git.branches import branch_name

log = logging.getLogger(__name__)

# A delivery, or a finished job's publishing, that fails this often (GitHub or git away) is given up: with
# pauses doubling from RETRY_PAUSE up to MAX_PAUSE, that is about half an hour of trying. Telling GitHub
# how it ended is tried for longer: the requester must hear of it.
ATTEMPTS = 10
REPORT_ATTEMPTS = 40
RETRY_PAUSE = 5.0
MAX_PAUSE = 600.0
PRUNE_EVERY = 3600.0
# Installation events after which the cached token is no good (or no longer has the rights it had).
TOKEN_CHANGES = frozenset({"deleted", "suspend", "new_permissions_accepted"})


class Desk:
    def __init__(self, settings: Settings, github: GitHub, poll: float = 1.0, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.config = settings.github
        self.github = github
        self.clock = clock
        self.jobs = JobsAPI(settings)
        self.records = Records(self.jobs.engine, clock)
        # Jobs work on these clones (by path): workers need no token to fetch a private repository.
        clones = settings.state_dir / "github" / "repos"
        self.git = AppGit(github.tokens, clones)
        self.ci = CIDesk(github, self.records, self.prepare)
        self.publisher = Publisher(github, self.git, self.jobs, self.ci, clones)
        self.poll = poll
        self.wake = threading.Event()
        self._progress: dict[str, JobView] = {}
        self._pruned_at = 0.0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - e.g. the database is away for a moment: the desk must live on
                log.exception("the GitHub desk's round failed; trying again")
            self.wake.wait(self.poll)
            self.wake.clear()

    def close(self) -> None:
        self.jobs.close()
        self.github.close()

    def step(self) -> None:
        for delivery in self.records.pending():
            self._take(delivery)
        for record in self.records.active():
            try:
                self._follow(record)
            except Exception as exc:  # noqa: BLE001 - GitHub, git or the store failed: try again later
                self._follow_later(record, exc)
        if self.clock() - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = self.clock()
            log.info("pruned %d old GitHub records", self.records.prune())

    def comment(self, job: Job, body: str) -> None:
        """A new comment on the issue or pull request the job came from (notify.GitHubCommenter)."""
        record = self.records.job(job.id)
        if record is None:
            raise LookupError(f"job {job.id} did not come from GitHub")
        self._post(record, f"notify:{_digest(body)}", body)

    # -- deliveries -> jobs ---------------------------------------------------------

    def _take(self, delivery: Delivery) -> None:
        event = parse_event(delivery.event, delivery.payload)  # validated when it came in
        intent = interpret(event, self.config) if event is not None else Ignore(reason=f"{delivery.event} event")
        try:
            outcome = self._act(delivery, intent)
        except RateLimited as exc:
            if exc.refused:  # this very try ran into the limit: it counts
                self._failed(delivery, intent, exc, at_least=exc.until - self.clock())
            else:
                self.records.retry_later(delivery.id, str(exc), exc.until - self.clock(), counted=False)
            return
        except Exception as exc:  # noqa: BLE001 - GitHub or git failed: try again later, a few times
            self._failed(delivery, intent, exc)
            return
        self.records.settle(delivery.id, "done", outcome)
        log.info("delivery %s (%s): %s", delivery.id, delivery.event, outcome)

    def _failed(self, delivery: Delivery, intent: Intent, exc: Exception, at_least: float = 0.0) -> None:
        problem = f"{type(exc).__name__}: {exc}"
        if delivery.attempts + 1 < ATTEMPTS:
            log.warning("delivery %s failed (will retry): %s", delivery.id, problem)
            self.records.retry_later(delivery.id, problem, max(_pause(delivery.attempts + 1), at_least))
            return
        log.error("delivery %s failed %d times, giving up: %s", delivery.id, ATTEMPTS, problem)
        if isinstance(intent, Run | Approve | Reject | Replan):
            try:
                self._reply(intent.thread, f"Sorry @{intent.user}, Shipyard could not act on this: "
                                           f"{defuse(str(exc))}", f"failed:{delivery.id}")
            except Exception as reply_exc:  # noqa: BLE001 - GitHub is down: the log has it
                log.error("could not say so on GitHub either: %s", reply_exc)
        # Settled last: a delivery given up is one whose requester has been told, or could not be (the reply
        # is keyed, so a try again after a crash here posts it once).
        self.records.settle(delivery.id, "failed", problem)

    def _act(self, delivery: Delivery, intent: Intent) -> str:
        if isinstance(intent, Ignore):
            return IGNORED + intent.reason
        if isinstance(intent, InstallationChanged):
            if intent.action in TOKEN_CHANGES:
                self.github.tokens.forget(intent.installation)
            if intent.action == "deleted":
                self.records.close_installation(intent.installation)
            return f"installation {intent.installation} on {intent.account}: {intent.action}"
        if isinstance(intent, CheckResult):
            return self.ci.judge(delivery.id, intent)
        thread = intent.thread
        key = f"reply:{delivery.id}"  # a delivery gets one reply at most
        if not self.github.may_write(thread.installation, thread.repo, intent.user):
            self._reply(thread, f"Thanks for asking, @{intent.user}! Only people with write access to "
                                f"{thread.repo} can give Shipyard work here. A maintainer can start it for you "
                                f"with the `{self.config.trigger_label}` label or a "
                                f"`{self.config.command_prefix} <what to do>` comment.", key)
            return f"refused {intent.user}: no write access"
        if isinstance(intent, TopUp):
            return self._topup(intent, key)
        if isinstance(intent, Run):
            started = self.prepare(delivery.id, intent)
            if isinstance(started, Refusal):
                self._reply(thread, f"@{intent.user} {started.reason}", key)
                return started.reason
            return f"started job {started}"
        return self._answer(intent, key)

    def _answer(self, intent: Approve | Reject | Replan, key: str) -> str:
        thread = intent.thread
        waiting = self.jobs.waiting_for_approval([r.job_id for r in self.records.jobs_in(thread.repo, thread.number)])
        if not waiting:
            self._reply(thread, f"@{intent.user} no plan is waiting for approval here.", key)
            return "no plan waiting"
        if isinstance(intent, Approve):
            answer = {"action": "approve"}
        elif isinstance(intent, Replan):
            answer = {"action": "replan", "reason": intent.note}
        else:
            answer = {"action": "reject", "reason": intent.reason or f"rejected by {intent.user} on GitHub"}
        try:
            self.jobs.answer(waiting[0], answer, intent.user)
        except JobStateError as exc:  # e.g. a re-plan without a note, or past the limit: said, not retried
            self._reply(thread, f"@{intent.user} {defuse(str(exc))}", key)
            return f"refused {answer['action']} of job {waiting[0]}: {exc}"
        return f"{answer['action']} job {waiting[0]} for {intent.user}"

    def _topup(self, intent: TopUp, key: str) -> str:
        thread = intent.thread
        waiting = self.jobs.waiting_for_budget([r.job_id for r in self.records.jobs_in(thread.repo, thread.number)])
        if not waiting:
            self._reply(thread, f"@{intent.user} no campaign here waits for budget.", key)
            return "no campaign waiting"
        self.jobs.topup(waiting[0], intent.amount, intent.user)
        return f"topped up campaign {waiting[0]} by ${intent.amount:g} for {intent.user}"

    def prepare(self, delivery_id: str, run: Run) -> str | Refusal:
        """Start a job for `run` (once per delivery): its id, or why it cannot start."""
        known = self.records.job_for_delivery(delivery_id)
        if known is not None:  # an earlier try made the job and failed after: only the queueing may be missing
            self.jobs.requeue(known.job_id)
            return known.job_id
        thread = run.thread
        installation, repo = thread.installation, thread.repo
        if thread.is_pull and not run.request:
            return Refusal(reason=f"what should change? Say it after the command: "
                                  f"`{self.config.command_prefix} <what to change>`.")
        info = self.github.repository(installation, repo)
        clone = self.git.open(installation, info.clone_url)
        base, push_to = info.default_branch, None
        if thread.is_pull:
            pull = self.github.pull(installation, repo, thread.number)
            refusal = _pull_refusal(pull, repo)
            if refusal:
                return Refusal(reason=refusal)
            # Under a ref of its own: the clone's fetches skip `shipyard/` branches, which our own PRs are on.
            self.git.fetch(installation, clone, info.clone_url,
                           [f"+refs/heads/{pull.head.ref}:refs/shipyard-pulls/{thread.number}"])
            base, push_to = pull.head.sha, pull.head.ref
        try:
            # From the default branch, whatever the request: a pull request cannot lift its own limits.
            config = parse_repo_config(self.github.file(installation, repo, FILE_NAME, info.default_branch))
        except RepoConfigError as exc:
            return Refusal(reason=f"Shipyard cannot start: {defuse(str(exc))}")
        refused = config.refused_models(self.settings)
        if refused:
            return Refusal(reason=f"Shipyard cannot start: this repository's {FILE_NAME} allows the models "
                                  f"{defuse(', '.join(config.models or []))}, but Shipyard here would use "
                                  f"{', '.join(refused)}.")
        comments = self.github.comments(installation, repo, thread.number)
        trusted = trusted_authors(comments, lambda login: self.github.may_write(installation, repo, login))
        task = Task(instruction=instruction(run, comments, trusted), repo=str(clone.git_dir), base=base,
                    approve_plan=self.config.approve_plan or config.approve_plan,
                    max_cost=config.max_cost(self.settings), test_command=config.test_command, image=config.image,
                    campaign=Campaign(verifier=run.campaign.verifier, budget=config.max_cost(self.settings))
                    if run.campaign else None)
        job = self.jobs.submit(task)
        self.records.add_job(job_id=job.id, delivery_id=delivery_id, installation=installation, repo=repo,
                             number=thread.number, is_pull=thread.is_pull, requested_by=run.user, title=run.title,
                             clone_url=info.clone_url, push_to=push_to)
        self.jobs.launch(job.id, {"repo": repo, "number": thread.number, "user": run.user, "push_to": push_to})
        return job.id

    def _reply(self, thread: Thread, body: str, key: str) -> None:
        self.github.comment(thread.installation, thread.repo, thread.number, body, key)

    def _post(self, record: GitHubJob, what: str, body: str) -> None:
        self.github.comment(record.installation, record.repo, record.number, body, f"{what}:{record.job_id}")

    # -- jobs -> status comments and results ----------------------------------------

    def _follow(self, record: GitHubJob) -> None:
        job = self.jobs.get(record.job_id)
        if job is None:  # pruned meanwhile
            self.records.update_job(record.job_id, done=True, outcome="The job was pruned.")
            return
        progress = self._progress_of(job.id)
        if not job.status.finished:
            if job.status == JobStatus.AWAITING_APPROVAL and not record.waiting_noted:
                prefix = self.config.command_prefix
                self._post(record, "waiting", f"@{record.requested_by} the plan of job {job.id} waits for your "
                                              f"approval (see the status comment): reply `{prefix} approve`, "
                                              f"`{prefix} reject <why>`, or `{prefix} replan <what is wrong>`.")
                record = self.records.update_job(job.id, waiting_noted=True)
            self._show(record, job, progress)
            return
        if record.outcome is None:
            self._published(job, self.publisher.publish(record, job))
            record = self.records.job(job.id) or record
        if record.notice:
            self._post(record, f"notice:{_digest(record.notice)}", record.notice)
            record = self.records.update_job(job.id, notice=None)
        self._show(record, job, progress)
        self.records.update_job(job.id, done=True, attempts=0)
        self._progress.pop(job.id, None)

    def _published(self, job: Job, published: Published) -> None:
        """Publishing is over: its outcome, and what the requester must hear, for the reporting step."""
        self.ci.job_published(job.id, published)
        self.records.update_job(job.id, outcome=published.outcome, notice=published.notice, attempts=0,
                                next_try=0.0)

    def _follow_later(self, record: GitHubJob, exc: Exception) -> None:
        """Look at the job again after a pause. A running job's status waits for GitHub as long as it takes;
        a finished job's publishing is given up after ATTEMPTS tries (its branch kept, the requester told), and
        the telling after REPORT_ATTEMPTS."""
        now = self.clock()
        if isinstance(exc, RateLimited):
            log.info("job %s: waiting for GitHub's rate limit: %s", record.job_id, exc)
            self.records.update_job(record.job_id, next_try=exc.until)
            return
        job = self.jobs.get(record.job_id)
        if job is None or not job.status.finished:
            log.warning("job %s: updating its status comment failed (will retry): %s", record.job_id, exc)
            self.records.update_job(record.job_id, next_try=now + 4 * RETRY_PAUSE)
            return
        attempts = record.attempts + 1
        problem = f"{type(exc).__name__}: {exc}"
        if record.outcome is None and attempts >= ATTEMPTS:
            log.error("job %s: giving up publishing its result after %d tries (its branch %s stays): %s",
                      record.job_id, attempts, branch_name(record.job_id), problem)
            self._published(job, unpublished(record, job, problem))
            return
        if record.outcome is not None and attempts >= REPORT_ATTEMPTS:
            log.error("job %s: giving up telling GitHub how it ended after %d tries: %s", record.job_id, attempts,
                      problem)
            self.records.update_job(record.job_id, done=True)
            return
        step = "publishing its result" if record.outcome is None else "reporting on GitHub"
        log.warning("job %s: %s failed (try %d, will retry): %s", record.job_id, step, attempts, problem)
        self.records.update_job(record.job_id, attempts=attempts, next_try=now + _pause(attempts))

    def _progress_of(self, job_id: str) -> JobView:
        view = self._progress.setdefault(job_id, JobView(job_id))
        for event in self.jobs.events_after(job_id, view.cursor):
            view.apply(event)
        return view

    def _show(self, record: GitHubJob, job: Job, progress: JobView) -> None:
        """Post the status comment, or edit it when its text changed; post it again if someone deleted it."""
        last_word = "\n\n".join(part for part in (record.outcome, self.ci.story(job.id)) if part) or None
        text = status_comment(job, progress, self.config.command_prefix, last_word)
        key = f"status:{job.id}"
        if record.comment_id is not None:
            if text == record.comment_text:
                return
            try:
                self.github.edit_comment(record.installation, record.repo, record.comment_id, text, key)
                self.records.update_job(job.id, comment_text=text)
                return
            except NotFound:
                log.info("job %s: its status comment was deleted; posting it again", job.id)
        comment_id = self.github.comment(record.installation, record.repo, record.number, text, key)
        self.records.update_job(job.id, comment_id=comment_id, comment_text=text)


def _pause(attempts: int) -> float:
    return min(RETRY_PAUSE * 2 ** (attempts - 1), MAX_PAUSE)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _pull_refusal(pull: PullInfo, repo: str) -> str | None:
    if pull.state != "open":
        return "this pull request is closed; Shipyard only adds commits to open ones."
    if pull.head.repo is None or pull.head.repo.full_name != repo:
        return "this pull request comes from a fork; Shipyard can only push to branches of this repository."
    return None
