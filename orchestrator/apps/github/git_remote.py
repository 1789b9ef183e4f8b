"""Git over HTTPS as the App: clone, fetch and push with installation tokens.

Each command takes its token through the one credential path (`TokenCache.use`): when GitHub
refuses the token (git says it could not authenticate, and cannot ask anyone, as prompts are off),
it is dropped and the command runs once more with a new one. A push that GitHub turns down keeps
GitHub's own words, the `remote:` lines, which name the repository rule or protection it broke.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from orchestrator.apps.github.auth import TokenCache, TokenRejected
from sandboxes.git.command import WorkspaceError
from sandboxes.git.repo import GitRepo

# What git says when the server refuses its credentials and it may not prompt for others.
_AUTH_REFUSED = ("terminal prompts disabled", "could not read Username", "Authentication failed")

T = TypeVar("T")


class GitRemoteError(RuntimeError):
    """A clone, fetch or push failed for a reason that may pass (the network, GitHub having trouble)."""


class NotFastForward(GitRemoteError):
    """The remote branch moved on: the commits are not a fast-forward of it."""


class PushRefused(RuntimeError):
    """GitHub turned the push down for good (a ruleset, a protected branch, a pre-receive hook)."""

    def __init__(self, summary: str, remote: list[str]):
        super().__init__(summary + (": " + " ".join(remote) if remote else ""))
        self.summary = summary
        self.remote = remote  # GitHub's words, one line each, without the `remote: ` prefix


class AppGit:
    def __init__(self, tokens: TokenCache, clones: Path):
        self.tokens = tokens
        self.clones = clones  # where the App keeps its clones; jobs work on them by path

    def open(self, installation: int, url: str) -> GitRepo:
        """The App's clone of `url`, made or brought up to date."""
        return self.tokens.use(installation, lambda token: _refused_token(
            lambda: GitRepo.open(url, self.clones, token=token)))

    def fetch(self, installation: int, repo: GitRepo, url: str, refspecs: Sequence[str]) -> None:
        self.tokens.use(installation, lambda token: _refused_token(lambda: repo.fetch(url, refspecs, token)))

    def push(self, installation: int, repo: GitRepo, branch: str, url: str, to: str | None = None) -> str:
        """Push the local `branch` to the branch `to` (default: the same name) at `url`, fast-forward only;
        the sha pushed."""
        sha = repo.resolve(f"refs/heads/{branch}")
        target = to or branch
        if target.startswith("-") or not target:
            raise GitRemoteError(f"cannot push to a branch named {target!r}")

        def push_with(token: str) -> str:
            args = ["git", "--git-dir", str(repo.git_dir), "-c", "core.hooksPath=/dev/null", "push", "--porcelain",
                    "--no-verify", "--", url, f"{sha}:refs/heads/{target}"]
            done = subprocess.run(args, env=_git_env(url, token), capture_output=True, text=True, errors="replace",
                                  stdin=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                raise _push_error(branch, target, done)
            return sha

        return self.tokens.use(installation, push_with)


def _refused_token(work: Callable[[], T]) -> T:
    """Run a GitRepo command, reading git's authentication failure as the token's refusal."""
    try:
        return work()
    except WorkspaceError as exc:
        if any(words in str(exc) for words in _AUTH_REFUSED):
            raise TokenRejected(f"GitHub refused the installation token for git: {exc}") from None
        raise


def _push_error(branch: str, target: str, done: subprocess.CompletedProcess[str]) -> Exception:
    stderr = done.stderr
    if any(words in stderr for words in _AUTH_REFUSED):
        return TokenRejected(f"GitHub refused the installation token for a push of {branch}")
    remote = [line.removeprefix("remote:").strip() for line in stderr.splitlines() if line.startswith("remote:")]
    remote = [line for line in remote if line]
    # --porcelain: "!<TAB><from>:<to><TAB>[rejected] (non-fast-forward)" or "[remote rejected] (<reason>)".
    refused = [line.split("\t")[-1] for line in done.stdout.splitlines() if line.startswith("!")]
    what = f"could not push {branch} to {target}"
    if refused and refused[0].startswith("[rejected]"):
        return NotFastForward(f"{what}: {refused[0]}")
    if refused and refused[0].startswith("[remote rejected]") and "declined" in refused[0]:
        why = refused[0].removeprefix("[remote rejected] ")
        return PushRefused(f"GitHub refused the push of {branch} to {target} {why}", remote)
    problem = refused[0] if refused else next((line for line in reversed(stderr.splitlines()) if line.strip()),
                                              f"exit code {done.returncode}")
    return GitRemoteError(f"{what}: {problem.strip()}")


def _git_env(url: str, token: str) -> dict[str, str]:
    """A clean environment for one git command that sends `token` as GitHub takes it over HTTPS (Basic auth as
    x-access-token), to `url`'s origin only, through environment config: never in argv, a URL or a file."""
    parts = urlsplit(url)
    credentials = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    settings = {"credential.helper": "",  # no helper may store the token or offer another
                f"http.{parts.scheme}://{parts.netloc}/.extraHeader": f"Authorization: Basic {credentials}"}
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_CONFIG_COUNT=str(len(settings)))
    for n, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    return env
