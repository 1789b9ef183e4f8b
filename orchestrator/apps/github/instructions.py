"""The task a job gets from GitHub: the request, the issue or pull request, and its conversation."""

from __future__ import annotations

from orchestrator.apps.github.client import Comment
from orchestrator.apps.github.triggers import Run

MAX_BODY = 8000
MAX_COMMENT = 2000
MAX_COMMENTS = 30


def instruction(run: Run, comments: list[Comment]) -> str:
    """What the planner reads. Bots' comments (Shipyard's status comments among them) are left out."""
    number = run.thread.number
    if run.thread.is_pull:
        lines = [f"Change the branch of pull request #{number} as asked: {run.request}", "",
                 f"Pull request #{number}: {run.title}"]
    else:
        lines = [run.request or f"Resolve GitHub issue #{number}.", "", f"Issue #{number}: {run.title}"]
    if run.body.strip():
        lines += ["", _cut(run.body.strip(), MAX_BODY)]
    if run.review is not None:
        where = f"{run.review.path}" + (f" line {run.review.line}" if run.review.line else "")
        lines += ["", f"The request was made in a review of {where}, on this part of the diff:", "```diff",
                  run.review.diff_hunk, "```"]
    people = [c for c in comments if not c.user.is_bot and (c.body or "").strip()][-MAX_COMMENTS:]
    if people:
        lines += ["", "Comments, oldest first:"]
        lines += [f"- {c.user.login}: {_cut(c.body or '', MAX_COMMENT)}" for c in people]
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [cut]"
