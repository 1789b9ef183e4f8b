"""Looking after the checks of the pull requests the App opened (`[ci] fix_failures = true` in .shipyard.toml).

When a check fails on the head of such a pull request:
- a GitHub Actions workflow run that failed on its first attempt has its failed jobs run once more: one
  that passes the second time failed by chance (a flaky check), and nothing is changed for it;
- one that fails again, or a check Shipyard cannot run again (another App's check run, a commit status),
  gets a follow-up job on the pull request's branch, as a review comment's `/shipyard` would: its task is
  the failure, with the end of each failing job's log; its commits are pushed to the branch, and the
  checks run on them;
- after `max_rounds` follow-up jobs the pull request is left to the requester, who is told.
The status comment of the job that opened the pull request tells the story, a line per step.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from orchestrator.apps.github.client import Forbidden, GitHub, PullInfo
from orchestrator.apps.github.publish import Published
from orchestrator.apps.github.records import IGNORED, CIWatch, GitHubJob, Records
from orchestrator.apps.github.repo_config import FILE_NAME, RepoConfigError, parse_repo_config
from orchestrator.apps.github.status import defuse, plain
from orchestrator.apps.github.triggers import FAILED, CheckResult, Refusal, Run, Thread
from orchestrator.store.jobs import Job

log = logging.getLogger(__name__)

LOG_LINES = 80
LOG_CHARS = 6000
MAX_LOGS = 3
# GitHub Actions starts each log line with a timestamp; colour codes come from the tools.
_NOISE = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT[\d:.]+Z ?|\x1b\[[0-9;]*m", re.MULTILINE)


class NotYet(RuntimeError):
    """The pull request a check is about is not open yet: its check results wait for it."""


StartJob = Callable[[str, Run], str | Refusal]


class CIDesk:
    def __init__(self, github: GitHub, records: Records, start: StartJob):
        self.github = github
        self.records = records
        self.start = start  # (delivery id, run) -> the job id, or why it cannot start

    # -- publishing tells us about pull requests ---------------------------------------

    def pull_coming(self, record: GitHubJob, job: Job, branch: str) -> None:
        """Before the job's branch is pushed for a pull request: watch it if the repository asks for that, so
        that no check result for it comes too early to be seen."""
        try:
            config = parse_repo_config(self.github.file(record.installation, record.repo, FILE_NAME, job.task.base))
        except RepoConfigError as exc:
            log.warning("job %s: not looking after its checks: %s", job.id, exc)
            return
        if config.ci.fix_failures:
            self.records.watch(job.id, record.installation, record.repo, branch, config.ci.max_rounds)

    def pull_opened(self, job_id: str, number: int) -> None:
        if self.records.watch_of(job_id) is not None:
            self.records.update_watch(job_id, pull_number=number)

    def job_published(self, job_id: str, published: Published) -> None:
        """A job's publishing is over. If it was to open a pull request and did not, there is nothing to watch;
        if it was fixing checks, its commits are on the branch, or the pull request is left to the requester."""
        opened = self.records.watch_of(job_id)
        if opened is not None and opened.pull_number is None:
            self.records.update_watch(job_id, over=True)
        watch = self.records.watch_fixed_by(job_id)
        if watch is None:
            return
        if published.pushed is not None:
            self.records.update_watch(watch.job_id, fix_job=None)
            self._tell(watch, f"Job {job_id} pushed {published.pushed[:7]}; the checks run on it.")
        else:
            self.records.update_watch(watch.job_id, fix_job=None, over=True)
            self._tell(watch, f"Job {job_id} did not fix it ({plain(published.outcome, 200)}); it is yours now.",
                       notice=f"the checks of pull request #{watch.pull_number} still fail: Shipyard's job {job_id} "
                              "could not fix them. Over to you.")

    def story(self, job_id: str) -> str | None:
        """The lines for the status comment of the job that opened the pull request."""
        watch = self.records.watch_of(job_id)
        if watch is None or not watch.story:
            return None
        return "\n".join([f"Checks of pull request #{watch.pull_number}:", *(f"- {line}" for line in watch.story)])

    # -- check results --------------------------------------------------------------------

    def judge(self, delivery_id: str, result: CheckResult) -> str:
        """Act on a check's result; what was done, for the delivery's record."""
        watch = self.records.watch_on(result.repo, result.branches)
        if watch is None or watch.over:
            return f"{IGNORED}check {result.name} on a branch whose checks Shipyard does not look after"
        if watch.pull_number is None:
            raise NotYet(f"the pull request from {watch.branch} is not open yet")
        pull = self.github.pull(watch.installation, watch.repo, watch.pull_number)
        if pull.state != "open":
            self.records.update_watch(watch.job_id, over=True)
            return f"{IGNORED}pull request #{pull.number} is {pull.state}"
        if pull.head.sha != result.sha:
            return f"{IGNORED}check {result.name} on {result.sha[:7]}, no longer the head of #{pull.number}"
        if result.passed:
            return self._passed(watch, result)
        return self._failed(delivery_id, watch, pull, result)

    def _passed(self, watch: CIWatch, result: CheckResult) -> str:
        failed_on = watch.failing.get(result.name)
        if failed_on is None:
            return f"{IGNORED}check {result.name} passed"
        name, sha = _name(result), result.sha[:7]
        if failed_on == result.sha and result.attempt > 1:
            line = f"{name} passed when run again on {sha}: a flaky failure, so nothing was changed for it."
        else:
            line = f"{name} passes on {sha}" + (f", after {watch.rounds} fix round(s)." if watch.rounds else ".")
        self.records.update_watch(watch.job_id, failing={k: v for k, v in watch.failing.items() if k != result.name})
        return self._tell(watch, line)

    def _failed(self, delivery_id: str, watch: CIWatch, pull: PullInfo, result: CheckResult) -> str:
        if watch.fix_job is not None:
            return f"{IGNORED}check {result.name} failed; job {watch.fix_job} is fixing the checks"
        name, sha = _name(result), result.sha[:7]
        failing = {**watch.failing, result.name: result.sha}
        if result.run_id is not None and result.attempt == 1:
            try:
                self.github.rerun_failed_jobs(watch.installation, watch.repo, result.run_id)
            except Forbidden as exc:  # e.g. the App may read Actions but not write: on to fixing it
                log.warning("cannot run %s again: %s", result.name, exc)
            else:
                self.records.update_watch(watch.job_id, failing=failing)
                return self._tell(watch, f"{name} failed on {sha}; its failed jobs run once more, to tell a flaky "
                                         "failure from a real one.")
        if watch.rounds >= watch.max_rounds:
            self.records.update_watch(watch.job_id, failing=failing, over=True)
            return self._tell(watch, f"{name} still fails on {sha} after {watch.rounds} fix round(s); it is yours "
                                     "now.", notice=f"the checks of pull request #{pull.number} still fail after "
                                                    f"{watch.rounds} fix round(s) by Shipyard: {name} on {sha}. "
                                                    "Over to you.")
        record = self.records.job(watch.job_id)
        assert record is not None, watch.job_id
        thread = Thread(installation=watch.installation, repo=watch.repo, number=pull.number, is_pull=True)
        run = Run(thread=thread, user=record.requested_by, request=self._failure(watch, result), title=pull.title,
                  body=pull.body or "")
        started = self.start(delivery_id, run)
        if isinstance(started, Refusal):
            self.records.update_watch(watch.job_id, failing=failing, over=True)
            return self._tell(watch, f"{name} failed on {sha}, and no follow-up job could start: {started.reason}")
        rounds = watch.rounds + 1
        self.records.update_watch(watch.job_id, failing=failing, rounds=rounds, fix_job=started)
        again = " again" if result.attempt > 1 else ""
        return self._tell(watch, f"{name} failed{again} on {sha}; follow-up job {started} fixes it (round {rounds} "
                                 f"of {watch.max_rounds}).")

    def _failure(self, watch: CIWatch, result: CheckResult) -> str:
        """The follow-up job's task: what fails, and what the check said about it."""
        lines = [f"make the failing check {_name(result)} pass. It fails on {result.sha[:7]}, the head of the "
                 "branch. Find the cause in what the check printed, below, and change the code so that the check "
                 "passes; never delete, skip or weaken a test or the check to get it green."]
        if result.run_id is not None:
            jobs = self.github.run_jobs(watch.installation, watch.repo, result.run_id)
            for job in [j for j in jobs if j.conclusion in FAILED][:MAX_LOGS]:
                text = self.github.job_log(watch.installation, watch.repo, job.id)
                lines += ["", f"The end of the log of its failing job `{plain(job.name, 100)}`:", "```",
                          _tail(text), "```"]
        elif result.details:
            lines += ["", "What the check says:", "```", _tail(result.details), "```"]
        return "\n".join(lines)

    def _tell(self, watch: CIWatch, line: str, notice: str | None = None) -> str:
        """Add a line to the story, and have the status comment of the job that opened the pull request (and
        the requester, with `notice`) told of it."""
        fresh = self.records.watch_of(watch.job_id)
        assert fresh is not None, watch.job_id
        self.records.update_watch(watch.job_id, story=[*fresh.story, line])
        record = self.records.job(watch.job_id)
        if record is not None:
            notices = [n for n in (record.notice, f"@{record.requested_by} {notice}" if notice else None) if n]
            self.records.update_job(watch.job_id, done=False, attempts=0, next_try=0.0,
                                    notice="\n\n".join(notices) or None)
        return line


def _name(result: CheckResult) -> str:
    return f"`{plain(result.name, 100).replace('`', '')}`"


def _tail(text: str) -> str:
    """The end of a log, without timestamps and colours, safe inside a code block of a comment."""
    lines = _NOISE.sub("", text).rstrip().splitlines()[-LOG_LINES:]
    return defuse("\n".join(lines)[-LOG_CHARS:].replace("```", "'''"))
