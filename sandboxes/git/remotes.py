"""Repositories named by URL: the cached bare clone, its fetches, and how a token is sent."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sandboxes.git.branches import BRANCH_PREFIX, check_branch
from sandboxes.git.command import SAFE_ARGS, WorkspaceError, failure_detail, run_git

if TYPE_CHECKING:
    from sandboxes.git.repo import GitRepo


def is_url(source: str) -> bool:
    return "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source) is not None


def cache_name(url: str) -> str:
    """The directory name of `url`'s clone in the cache: readable, and unique by a hash."""
    tail = re.sub(r"\.git$", "", url.rstrip("/").rpartition("/")[2].rpartition(":")[2])
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-") or "repo"
    return f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"


def clone(url: str, git_dir: Path, token: str | None) -> None:
    """A bare clone whose fetches update the remote's branches and tags but never ours.

    Not --mirror: a mirror fetch force-updates every ref, so once a job branch is pushed
    it would overwrite the local `shipyard/...` branches (or fail on checked-out ones).
    """
    # Clone beside the final place and rename: an interrupted clone never looks complete.
    partial = Path(tempfile.mkdtemp(prefix=".clone-", dir=git_dir.parent))
    try:
        cloned = run_git(["clone", "--bare", "--quiet", "--", url, str(partial)], cwd=git_dir.parent,
                         env=auth_env(url, token), check=False)
        if cloned.returncode != 0:
            raise WorkspaceError(
                f"could not clone {url}: {failure_detail(cloned)}; check the URL and your access to it"
            )
        options = [*SAFE_ARGS, "--git-dir", str(partial)]
        run_git(
            ["config", "--replace-all", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"],
            cwd=partial,
            options=options,
        )
        run_git(
            ["config", "--add", "remote.origin.fetch", f"^refs/heads/{BRANCH_PREFIX}/*"], cwd=partial, options=options
        )
        run_git(["config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*"], cwd=partial, options=options)
        partial.rename(git_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def fetch_clone(url: str, git_dir: Path, token: str | None) -> None:
    """Bring the clone of `url` up to date with it."""
    fetched = run_git(
        ["fetch", "--quiet", "origin"], cwd=git_dir, options=[*SAFE_ARGS, "--git-dir", str(git_dir)],
        env=auth_env(url, token), check=False,
    )
    if fetched.returncode != 0:
        raise WorkspaceError(
            f"could not fetch {url}: {failure_detail(fetched)}; check your network and your access to it"
        )


def push_branch(repo: GitRepo, branch: str, url: str, token: str | None, to: str | None) -> str:
    """Push `branch` to the branch `to` (default: the same name) at `url`, fast-forward only; the sha pushed.

    The token travels as an HTTP header set in this one command's environment: never in
    a URL, an argument list, the repository's config or a sandbox.
    """
    target = to or branch
    check_branch(branch)
    check_branch(target)
    sha = repo.resolve(f"refs/heads/{branch}")
    pushed = repo.git(["push", "--porcelain", "--no-verify", "--", url, f"{sha}:refs/heads/{target}"],
                      env=auth_env(url, token), check=False)
    if pushed.returncode != 0:
        rejected = [line.split("\t")[-1] for line in pushed.stdout.splitlines() if line.startswith("!")]
        why = rejected[0] if rejected else failure_detail(pushed)
        raise WorkspaceError(f"could not push {branch} to {target} at {url}: {why}")
    return sha


def fetch_refs(repo: GitRepo, url: str, refspecs: Sequence[str], token: str | None) -> None:
    """Fetch `refspecs` from `url` (token as in `push_branch`), e.g. a branch the clone's own fetches skip."""
    with repo.locked():
        fetched = repo.git(["fetch", "--quiet", "--no-tags", "--", url, *refspecs], env=auth_env(url, token),
                           check=False)
    if fetched.returncode != 0:
        raise WorkspaceError(f"could not fetch {' '.join(refspecs)} from {url}: {failure_detail(fetched)}")


def auth_env(url: str, token: str | None) -> dict[str, str]:
    """Config for one git command that sends `token` the way GitHub takes it over HTTPS (Basic auth,
    user x-access-token), for `url`'s origin only.

    Environment config rather than `-c` (argv shows in `ps`), a URL or a config file (both kept on disk).
    """
    parts = urlsplit(url)
    if not token or parts.scheme not in ("https", "http"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "2",
        # Nor may a credential helper store the token, or offer another one.
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_1": f"Authorization: Basic {basic}",
    }
