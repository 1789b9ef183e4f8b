"""Running git against a repository that is data, not code.

Every git call carries `SAFE_ARGS`: the repository's hooks and fsmonitor never run on
the host, and (with `repo_config_args`) the filter drivers configured for it (git-lfs,
git-crypt, ...) are switched off, so worktrees hold blobs exactly as stored and commits
store files exactly as written. Nothing is read from the caller's environment that
would point git at another repository, index or config.

One gap is documented rather than closed: a merge driver (`merge.<name>.driver`) that
the user's own config defines still runs when a branch's .gitattributes names it,
since blanking it would make git resolve conflicts silently and wrongly.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from itertools import takewhile
from pathlib import Path

# Passed as `-c` to every git call; command-line config outranks the repo's and the user's.
_SAFE_CONFIG = (
    # Sandboxes write worktrees as uid 1000 while the host runs as another uid.
    "safe.directory=*",
    # The repository's hooks are its code and must never run on the host.
    "core.hooksPath=/dev/null",
    # A configured fsmonitor is a command git would run, just like a hook.
    "core.fsmonitor=false",
    # A background worker has no signing key and no pinentry.
    "commit.gpgSign=false",
    # No auto-gc detached from our calls: every git process of ours ends inside the repository
    # lock, so a lock file met under that lock is a dead process's (see locks.clear_stale_locks).
    "gc.auto=0",
)
SAFE_ARGS = tuple(arg for setting in _SAFE_CONFIG for arg in ("-c", setting))

# Variables that would point our git calls at another repository, index or config
# (as `git rev-parse --local-env-vars` lists them), e.g. when Shipyard runs from a hook.
_REPO_ENV_VARS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
    }
)

# The most paths of a list in git's stderr that an error message repeats.
_LISTED = 10


class WorkspaceError(RuntimeError):
    """A git workspace operation failed; the message is one line and says what to do."""


def run_git(
    args: list[str],
    cwd: Path,
    *,
    options: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `git <options> <args>`; options default to `SAFE_ARGS` alone."""
    if options is None:
        options = SAFE_ARGS
    environ = {k: v for k, v in os.environ.items() if k not in _REPO_ENV_VARS}
    # Stable English messages; nothing may wait for an editor or a password prompt.
    environ.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_EDITOR=":", **(env or {}))
    try:
        proc = subprocess.run(
            ["git", *options, *args],
            cwd=cwd,
            env=environ,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
        )
    except FileNotFoundError:
        raise WorkspaceError("git is not installed; install git 2.39 or newer") from None
    if check and proc.returncode != 0:
        raise git_error(args, proc)
    return proc


def file_version(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever git rewrites the file at `path` (it writes a new file and renames it over the old
    one): a key for caching what was read of it. None when there is no such file."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size, found.st_ino


def repo_config_args(git_dir: Path) -> list[str]:
    """`-c` options: `SAFE_ARGS`, and every filter driver the repository sees switched off."""
    options = [*SAFE_ARGS, "--git-dir", str(git_dir)]
    listed = run_git(["config", "--name-only", "--get-regexp", r"^filter\."], cwd=git_dir, options=options, check=False)
    drivers = sorted({key.removeprefix("filter.").rpartition(".")[0] for key in listed.stdout.split()})
    args = [*SAFE_ARGS]
    for driver in drivers:
        # An empty command is "no filter"; required=false stops git from failing on it.
        for setting in ("clean=", "smudge=", "process=", "required=false"):
            args += ["-c", f"filter.{driver}.{setting}"]
    return args


def git_error(args: list[str], proc: subprocess.CompletedProcess[str]) -> WorkspaceError:
    return WorkspaceError(f"git {args[0]} failed: {failure_detail(proc)}")


def failure_detail(proc: subprocess.CompletedProcess[str]) -> str:
    """The line of git's stderr that says what went wrong, with the paths git lists under it, if any.

    E.g. "The following untracked working tree files would be overwritten by merge: a.txt, b.txt".
    """
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith(("fatal: ", "error: ")):
            reason = line.partition(": ")[2].strip()
            listed = [path.strip() for path in takewhile(lambda later: later.startswith("\t"), lines[i + 1 :])]
            if reason.endswith(":") and listed:
                more = f" and {len(listed) - _LISTED} more" if len(listed) > _LISTED else ""
                reason = f"{reason} {', '.join(listed[:_LISTED])}{more}"
            return reason
    return lines[-1].strip() if lines else f"exit code {proc.returncode}"
