"""Shipyard's branch names: `shipyard/<job>` for a job, `shipyard/<job>--<agent>` for one agent's work."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sandboxes.git.command import WorkspaceError, run_git

BRANCH_PREFIX = "shipyard"

# Separates a job from an agent in branch names. Not "/": git stores refs as paths, so
# a branch `shipyard/<job>` and branches under `shipyard/<job>/` cannot both exist.
AGENT_SEPARATOR = "--"


def branch_name(job_id: str, name: str | None = None) -> str:
    """`shipyard/<job>` for a job's branch, `shipyard/<job>--<name>` for one agent's work in it."""
    if not job_id or "/" in job_id or AGENT_SEPARATOR in job_id:
        raise WorkspaceError(f"invalid job id {job_id!r} for a branch name; use letters, digits, '-' and '_'")
    if name is not None and (not name or "/" in name):
        raise WorkspaceError(f"invalid name {name!r} for a branch name; use letters, digits, '-' and '_'")
    branch = f"{BRANCH_PREFIX}/{job_id}" + (f"{AGENT_SEPARATOR}{name}" if name is not None else "")
    check_branch(branch)
    return branch


def check_branch(branch: str) -> None:
    """WorkspaceError unless `branch` is a valid branch name (one that cannot pass for an option)."""
    if not _valid_ref(f"refs/heads/{branch}") or branch.startswith("-"):
        raise WorkspaceError(f"invalid branch name {branch!r}; see `git help check-ref-format`")


# git's rules depend on the name alone, and every git operation checks its branch: without the cache a job
# spent a `git check-ref-format` process on the same few names dozens of times each.
@lru_cache(maxsize=4096)
def _valid_ref(ref: str) -> bool:
    return run_git(["check-ref-format", ref], cwd=Path("/"), check=False).returncode == 0
