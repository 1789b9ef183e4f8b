"""The task a job gets from GitHub: the request, the issue or pull request, and its conversation.

Only what people with write access wrote in the conversation goes into the task: anyone can comment
on a public issue, and a comment is text the agents would act on. The issue or pull request itself
is kept whoever wrote it, since someone with write access chose to hand it to Shipyard.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.apps.github.client import Comment
from orchestrator.apps.github.triggers import Run

MAX_BODY = 8000
MAX_COMMENT = 2000
MAX_COMMENTS = 30
# Associations GitHub gives only to people who may have write access; anyone else has none.
MAYBE_WRITERS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


def trusted_authors(comments: list[Comment], may_write: Callable[[str], bool]) -> set[str]:
    """The people (not bots) among the comments' authors who have write access, asked of `may_write` only for
    those whose association says they might."""
    maybe = {c.user.login for c in comments if not c.user.is_bot and c.author_association in MAYBE_WRITERS}
    return {login for login in sorted(maybe) if may_write(login)}


def instruction(run: Run, comments: list[Comment], trusted: set[str]) -> str:
    """What the planner reads: comments by bots (Shipyard's status comments among them) and by people outside
    `trusted` are left out, the latter counted."""
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
    said = [c for c in comments if not c.user.is_bot and (c.body or "").strip()]
    people = [c for c in said if c.user.login in trusted | {run.user}][-MAX_COMMENTS:]
    if people:
        lines += ["", "Comments, oldest first:"]
        lines += [f"- {c.user.login}: {_cut(c.body or '', MAX_COMMENT)}" for c in people]
    left_out = sum(1 for c in said if c.user.login not in trusted | {run.user})
    if left_out:
        lines += ["", f"({left_out} comment(s) by people without write access to the repository are left out.)"]
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [cut]"
