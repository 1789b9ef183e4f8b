"""The desk: turns stored deliveries into jobs, keeps each job's status comment current, delivers results.

It runs as one thread beside the webhook endpoint, so a slow GitHub or a slow fetch never
delays an answer to GitHub. Everything it works from is in the store (deliveries, the
GitHub side of jobs, the jobs' events), so after a restart it carries on where it was.
"""

from __future__ import annotations

import logging
import threading
import time

from orchestrator.apps.github.client import GitHub, PullInfo
from orchestrator.apps.github.instructions import instruction
from orchestrator.apps.github.payloads import parse_event
from orchestrator.apps.github.records import Delivery, GitHubJob, Records
from orchestrator.apps.github.repo_config import FILE_NAME, RepoConfigError, parse_repo_config
from orchestrator.apps.github.report_markdown import report_markdown
from orchestrator.apps.github.status import status_comment
from orchestrator.apps.github.triggers import (
    Approve,
    Ignore,
    InstallationChanged,
    Intent,
    Reject,
    Run,
    Thread,
    interpret,
)
from orchestrator.config.settings import Settings
from orchestrator.engine.report import Report
from orchestrator.runtime.director import Director
from orchestrator.store.events import DirectorAnswer, GitHubRequest
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobLookupError, JobStatus, Task
from sandboxes.git.branches import branch_name
from sandboxes.git.command import WorkspaceError
from sandboxes.git.repo import GitRepo

log = logging.getLogger(__name__)

# A delivery, or a finished job's result, that fails this often (GitHub or git away) is given up: with
# pauses doubling from RETRY_PAUSE up to MAX_PAUSE, that is about half an hour of trying.
ATTEMPTS = 10
RETRY_PAUSE = 5.0
MAX_PAUSE = 600.0


class Desk:
    def __init__(self, settings: Settings, github: GitHub, poll: float = 1.0):
        self.settings = settings
        self.config = settings.github
        self.github = github
        self.director = Director(settings)
        self.records = Records(self.director.records.engine)
        # Jobs work on these clones (by path): workers need no token to fetch a private repository.
        self.clones = settings.state_dir / "github" / "repos"
        self.poll = poll
        self.wake = threading.Event()
        self._progress: dict[str, JobView] = {}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - e.g. the database is away for a moment: the desk must live on
                log.exception("the GitHub desk's round failed; trying again")
            self.wake.wait(self.poll)
            self.wake.clear()

    def close(self) -> None:
        self.director.close()
        self.github.close()

    def step(self) -> None:
        for delivery in self.records.pending():
            self._take(delivery)
        for record in self.records.active():
            try:
                self._follow(record)
            except Exception as exc:  # noqa: BLE001 - GitHub, git or the store failed: try again later
                self._follow_later(record, exc)

    def comment(self, job: Job, body: str) -> None:
        """A new comment on the issue or pull request the job came from (notify.GitHubCommenter)."""
        record = self.records.job(job.id)
        if record is None:
            raise LookupError(f"job {job.id} did not come from GitHub")
        self.github.comment(record.installation, record.repo, record.number, body)

    # -- deliveries -> jobs ---------------------------------------------------------

    def _take(self, delivery: Delivery) -> None:
        event = parse_event(delivery.event, delivery.payload)  # validated when it came in
        intent = interpret(event, self.config) if event is not None else Ignore(reason=f"{delivery.event} event")
        try:
            outcome = self._act(delivery.id, intent)
        except Exception as exc:  # noqa: BLE001 - GitHub or git failed: try again later, a few times
            self._failed(delivery, intent, exc)
            return
        self.records.settle(delivery.id, "done", outcome)
        log.info("delivery %s (%s): %s", delivery.id, delivery.event, outcome)

    def _failed(self, delivery: Delivery, intent: Intent, exc: Exception) -> None:
        problem = f"{type(exc).__name__}: {exc}"
        if delivery.attempts + 1 < ATTEMPTS:
            log.warning("delivery %s failed (will retry): %s", delivery.id, problem)
            self.records.retry_later(delivery.id, problem, _pause(delivery.attempts + 1))
            return
        log.error("delivery %s failed %d times, giving up: %s", delivery.id, ATTEMPTS, problem)
        self.records.settle(delivery.id, "failed", problem)
        if isinstance(intent, (Run, Approve, Reject)):
            try:
                self._reply(intent.thread, f"Sorry @{intent.user}, Shipyard could not act on this: {exc}")
            except Exception as reply_exc:  # noqa: BLE001 - GitHub is down: the log has it
                log.error("could not say so on GitHub either: %s", reply_exc)

    def _act(self, delivery_id: str, intent: Intent) -> str:
        if isinstance(intent, Ignore):
            return f"ignored: {intent.reason}"
        if isinstance(intent, InstallationChanged):
            if intent.action in ("deleted", "suspend"):
                self.github.tokens.forget(intent.installation)
            return f"installation {intent.installation} on {intent.account}: {intent.action}"
        thread = intent.thread
        if not self.github.may_write(thread.installation, thread.repo, intent.user):
            self._reply(thread, f"Thanks for asking, @{intent.user}! Only people with write access to "
                                f"{thread.repo} can give Shipyard work here. A maintainer can start it for you "
                                f"with the `{self.config.trigger_label}` label or a "
                                f"`{self.config.command_prefix} <what to do>` comment.")
            return f"refused {intent.user}: no write access"
        if isinstance(intent, Run):
            return self._start(delivery_id, intent)
        return self._answer(intent)

    def _answer(self, intent: Approve | Reject) -> str:
        thread = intent.thread
        waiting = [r.job_id for r in self.records.jobs_in(thread.repo, thread.number)
                   if self.director.get(r.job_id).status == JobStatus.AWAITING_APPROVAL]
        if not waiting:
            self._reply(thread, f"@{intent.user} no plan is waiting for approval here.")
            return "no plan waiting"
        if isinstance(intent, Approve):
            answer = DirectorAnswer(action="approve", by=intent.user)
        else:
            answer = DirectorAnswer(action="reject", reason=intent.reason or f"rejected by {intent.user} on GitHub",
                                    by=intent.user)
        self.director.record_answer(waiting[0], answer)
        self.director.answer_later(waiting[0])
        return f"{answer.action} job {waiting[0]} for {intent.user}"

    def _start(self, delivery_id: str, run: Run) -> str:
        known = self.records.job_for_delivery(delivery_id)
        if known is not None:  # an earlier try made the job and failed after: only the queueing may be missing
            self.director.enqueue(known.job_id)
            return f"started job {known.job_id}"
        thread = run.thread
        installation, repo = thread.installation, thread.repo
        if thread.is_pull and not run.request:
            self._reply(thread, f"@{run.user} what should change? Say it after the command: "
                                f"`{self.config.command_prefix} <what to change>`.")
            return "no request"
        info = self.github.repository(installation, repo)
        token = self.github.token(installation)
        clone = GitRepo.open(info.clone_url, self.clones, token=token)
        base, push_to = info.default_branch, None
        if thread.is_pull:
            pull = self.github.pull(installation, repo, thread.number)
            refusal = _pull_refusal(pull, repo)
            if refusal:
                self._reply(thread, f"@{run.user} {refusal}")
                return refusal
            # Under a ref of its own: the clone's fetches skip `shipyard/` branches, which our own PRs are on.
            clone.fetch(info.clone_url, [f"+refs/heads/{pull.head.ref}:refs/shipyard-pulls/{thread.number}"], token)
            base, push_to = pull.head.sha, pull.head.ref
        try:
            # From the default branch, whatever the request: a pull request cannot lift its own limits.
            config = parse_repo_config(self.github.file(installation, repo, FILE_NAME, info.default_branch))
        except RepoConfigError as exc:
            self._reply(thread, f"@{run.user} Shipyard cannot start: {exc}")
            return str(exc)
        refused = config.refused_models(self.settings)
        if refused:
            why = (f"this repository's {FILE_NAME} allows the models {', '.join(config.models or [])}, "
                   f"but Shipyard here would use {', '.join(refused)}")
            self._reply(thread, f"@{run.user} Shipyard cannot start: {why}.")
            return why
        comments = self.github.comments(installation, repo, thread.number)
        task = Task(instruction=instruction(run, comments), repo=str(clone.git_dir), base=base,
                    approve_plan=self.config.approve_plan or config.approve_plan,
                    max_cost=config.max_cost(self.settings), test_command=config.test_command, image=config.image)
        job = self.director.submit(task)
        self.records.add_job(job_id=job.id, delivery_id=delivery_id, installation=installation, repo=repo,
                             number=thread.number, is_pull=thread.is_pull, requested_by=run.user, title=run.title,
                             clone_url=info.clone_url, push_to=push_to)
        self.director.records.events.append(GitHubRequest(job_id=job.id, repo=repo, number=thread.number,
                                                          user=run.user, push_to=push_to))
        self.director.enqueue(job.id)
        return f"started job {job.id}"

    def _reply(self, thread: Thread, body: str) -> None:
        self.github.comment(thread.installation, thread.repo, thread.number, body)

    # -- jobs -> status comments and results ----------------------------------------

    def _follow(self, record: GitHubJob) -> None:
        try:
            job = self.director.get(record.job_id)
        except JobLookupError:  # pruned meanwhile
            self.records.update_job(record.job_id, done=True, outcome="The job was pruned.")
            return
        progress = self._progress_of(job.id)
        if job.status.finished:
            if record.outcome is None:
                # Kept before the status comment says it: a retry must not publish twice.
                record = record.model_copy(update={"outcome": self._deliver(record, job)})
                self.records.update_job(job.id, outcome=record.outcome)
            self._show(record, job, progress)
            self.records.update_job(job.id, done=True)
            self._progress.pop(job.id, None)
            return
        if job.status == JobStatus.AWAITING_APPROVAL and not record.waiting_noted:
            prefix = self.config.command_prefix
            self.comment(job, f"@{record.requested_by} the plan of job {job.id} waits for your approval (see the "
                              f"status comment): reply `{prefix} approve`, or `{prefix} reject <why>`.")
            self.records.update_job(job.id, waiting_noted=True)
        self._show(record, job, progress)

    def _follow_later(self, record: GitHubJob, exc: Exception) -> None:
        """Look at the job again after a pause. A running job's status waits for GitHub as long as it takes;
        a finished job's result is given up after ATTEMPTS tries, its branch kept."""
        if not self.director.get(record.job_id).status.finished:
            log.warning("job %s: updating its status comment failed (will retry): %s", record.job_id, exc)
            self.records.update_job(record.job_id, next_try=time.time() + 4 * RETRY_PAUSE)
            return
        attempts = record.attempts + 1
        if attempts >= ATTEMPTS:
            log.error("job %s: giving up on GitHub after %d tries (its branch %s stays): %s", record.job_id,
                      attempts, branch_name(record.job_id), exc)
            self.records.update_job(record.job_id, done=True,
                                    outcome=record.outcome or f"Could not deliver the result: {exc}")
            return
        log.warning("job %s: delivering its result failed (try %d, will retry): %s", record.job_id, attempts, exc)
        self.records.update_job(record.job_id, attempts=attempts, next_try=time.time() + _pause(attempts))

    def _progress_of(self, job_id: str) -> JobView:
        view = self._progress.setdefault(job_id, JobView(job_id))
        for event in self.director.events(job_id, after=view.cursor):
            view.apply(event)
        return view

    def _show(self, record: GitHubJob, job: Job, progress: JobView) -> None:
        """Post the status comment, or edit it when its text changed."""
        text = status_comment(job, progress, self.config.command_prefix, record.outcome)
        if record.comment_id is None:
            comment_id = self.github.comment(record.installation, record.repo, record.number, text)
            self.records.update_job(job.id, comment_id=comment_id, comment_text=text)
        elif text != record.comment_text:
            self.github.edit_comment(record.installation, record.repo, record.comment_id, text)
            self.records.update_job(job.id, comment_text=text)

    def _deliver(self, record: GitHubJob, job: Job) -> str:
        """Push and open the pull request, or say why not; the last word for the status comment."""
        report = self.director.report(job.id)
        if report is not None and _deliverable(report):
            return self._publish(record, job, report)
        return self._explain(record, job, report)

    def _publish(self, record: GitHubJob, job: Job, report: Report) -> str:
        token = self.github.token(record.installation)
        clone = GitRepo.open(job.task.repo, self.clones)
        body = report_markdown(report)
        failing = "" if report.succeeded else ", though the tests fail on it"
        if record.push_to is not None:
            try:
                clone.push(report.job_branch, record.clone_url, token, to=record.push_to)
            except WorkspaceError as exc:  # e.g. the branch moved on meanwhile: keep the work visible anyway
                clone.push(report.job_branch, record.clone_url, token)
                outcome = (f"Could not push to `{record.push_to}` ({exc}); the commits are on the branch "
                           f"`{report.job_branch}` instead.")
                self.comment(job, f"@{record.requested_by} {outcome}")
                return outcome
            outcome = f"Pushed the changes to `{record.push_to}`{failing}."
            self.comment(job, f"@{record.requested_by} {outcome}\n\n{body}")
            return outcome
        clone.push(report.job_branch, record.clone_url, token)
        pull = self.github.find_pull(record.installation, record.repo, report.job_branch) or self.github.open_pull(
            record.installation, record.repo, title=record.title, head=report.job_branch, base=job.task.base,
            body=f"Closes #{record.number}.\n\n{body}", draft=not report.succeeded)
        return f"Opened pull request #{pull.number}" + (" as a draft: the tests fail on it." if failing else ".")

    def _explain(self, record: GitHubJob, job: Job, report: Report | None) -> str:
        if job.status == JobStatus.REJECTED:
            return f"Stopped: {job.error or 'the plan was rejected'}."
        if job.status == JobStatus.CANCELLED:
            return "Cancelled."
        if report is not None and report.succeeded:
            return "Done: nothing needed to change."
        why = _failure(job, report)
        self.comment(job, f"@{record.requested_by} job {job.id} failed: {why}")
        return f"Failed: {why} The work so far stays on branch `{branch_name(job.id)}` on the Shipyard host."


def _pause(attempts: int) -> float:
    return min(RETRY_PAUSE * 2 ** (attempts - 1), MAX_PAUSE)


def _pull_refusal(pull: PullInfo, repo: str) -> str | None:
    if pull.state != "open":
        return "this pull request is closed; Shipyard only adds commits to open ones."
    if pull.head.repo is None or pull.head.repo.full_name != repo:
        return "this pull request comes from a fork; Shipyard can only push to branches of this repository."
    return None


def _deliverable(report: Report) -> bool:
    """Changes worth a pull request: the job succeeded, or failed only because the tests fail at the end (a draft)."""
    if not report.diff_stat.files:
        return False
    if report.succeeded:
        return True
    merged = bool(report.subtasks) and all(sub.status == "merged" for sub in report.subtasks)
    after = report.tests_after
    return merged and not report.stop_reason and after is not None and after.passed is False


def _failure(job: Job, report: Report | None) -> str:
    """Why the job failed, in a sentence or two."""
    if report is None or report.stop_reason:
        return f"{(report.stop_reason if report else None) or job.error or 'it stopped'}."
    failed = [f"{sub.id} ({sub.reason or sub.status})" for sub in report.subtasks if sub.status != "merged"]
    if failed:
        return f"subtasks not done: {'; '.join(failed)}."
    return "the tests fail after the changes."
