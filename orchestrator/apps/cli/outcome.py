"""How a job's end reads at the end of `shipyard run` / `shipyard result`: one line, and an exit code.

| exit | the job |
|---|---|
| 0 | succeeded, verified: its tests ran and nothing that passed at base fails |
| 1 | failed, was rejected or cancelled |
| 2 | (bad usage: the command line was wrong) |
| 3 | succeeded, unverified: no test could tell (none found, or none that tells new failures from old) |
| 4 | partially succeeded: some subtasks merged and break nothing, others failed |
| 5 | has not ended yet (`result` without `--wait`, or waiting for approval or budget) |
| 130 | interrupted (Ctrl-C); `shipyard resume` goes on |
"""

from __future__ import annotations

from rich.text import Text

from orchestrator.store.jobs import Job, JobStatus

EXIT_CODES = {JobStatus.SUCCEEDED: 0, JobStatus.UNVERIFIED: 3, JobStatus.PARTIAL: 4}
FAILED, NOT_ENDED = 1, 5


def exit_code(status: JobStatus) -> int:
    if not status.finished:
        return NOT_ENDED
    return EXIT_CODES.get(status, FAILED)


def last_line(job: Job) -> Text:
    """The job's end in one line: its status and why, whatever the reason's own line breaks."""
    style = {JobStatus.SUCCEEDED: "green", JobStatus.UNVERIFIED: "yellow", JobStatus.PARTIAL: "yellow"}.get(
        job.status, "red")
    reason = " ".join((job.error or "").split())
    if not reason and job.status not in EXIT_CODES:
        reason = f"see `shipyard show {job.id}`"
    branch = (job.report or {}).get("job_branch") if job.status.delivered else None
    where = f" — branch {branch}" if branch else ""
    return Text.assemble((f"job {job.id} {job.status.label}", f"bold {style}"), f": {reason}" if reason else "",
                         where)
