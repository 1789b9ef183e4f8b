"""The GitHub REST endpoints the App calls, each as an installation of the App.

Every call takes the one credential path (`TokenCache.use`: a token GitHub refuses is swapped for a
new one and the call made once more) and the installation's rate-limit gate (rate_limits.py). Every
comment carries a hidden marker naming what it is for, so that a comment whose answer was lost on the
way is found again rather than posted twice.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import BaseModel

from orchestrator.apps.github.auth import InstallationToken, TokenCache, TokenRejected, app_jwt, load_private_key
from orchestrator.apps.github.payloads import User
from orchestrator.apps.github.rate_limits import RateLimits, message_of
from orchestrator.config.settings import ConfigError, GitHubSettings

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
# GitHub refuses comment and pull request bodies longer than 65536 characters.
MAX_BODY = 65_000
ATTEMPTS = 3
WRITE_ROLES = frozenset({"admin", "maintain", "write"})


class GitHubError(RuntimeError):
    """A GitHub API call failed; the message is one line."""

    @classmethod
    def of(cls, response: httpx.Response) -> GitHubError:
        """The error GitHub's answer describes: its message, and the details of a 422."""
        try:
            data = response.json()
        except ValueError:
            data = None
        errors = data.get("errors", []) if isinstance(data, dict) else []
        what = message_of(response)
        details = [str(e.get("message") or e.get("code")) for e in errors if isinstance(e, dict)]
        if details:
            what += f" ({'; '.join(details)})"
        request = response.request
        kind = {403: Forbidden, 404: NotFound}.get(response.status_code, cls)
        return kind(f"GitHub {request.method} {request.url.path}: {response.status_code} {what}")


class NotFound(GitHubError):
    """GitHub answered 404: no such thing, or none this installation may see."""


class Forbidden(GitHubError):
    """GitHub answered 403 (not for a rate limit): the App lacks a permission for it, or it cannot be done."""


class OutcomeUnknown(GitHubError):
    """A request that changes something got no answer, or a 5xx: it may or may not have been done."""


class RepoInfo(BaseModel):
    full_name: str
    default_branch: str
    clone_url: str
    private: bool = False


class Comment(BaseModel):
    id: int
    body: str | None = None
    user: User
    # OWNER, MEMBER or COLLABORATOR may have write access; anyone else (CONTRIBUTOR, NONE, ...) has not.
    author_association: str = "NONE"


class RepoName(BaseModel):
    full_name: str


class PullRef(BaseModel):
    ref: str
    sha: str
    repo: RepoName | None = None  # None once a fork is deleted


class PullInfo(BaseModel):
    number: int
    title: str
    body: str | None = None
    state: str
    draft: bool = False
    head: PullRef
    base: PullRef


class Permission(BaseModel):
    permission: str
    role_name: str | None = None


class Contents(BaseModel):
    type: str
    encoding: str | None = None
    content: str | None = None


class ActionsJob(BaseModel):
    """One job of a GitHub Actions workflow run (its check run has the same id)."""

    id: int
    name: str
    conclusion: str | None = None  # None while it runs


class GitHub:
    def __init__(self, api_url: str, app_id: int, private_key: RSAPrivateKey, timeout: float = 30.0,
                 pause: float = 1.0, clock: Callable[[], float] = time.time):
        self.app_id = app_id
        self.private_key = private_key
        self.pause = pause
        self.http = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, headers={
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "shipyard-github-app",
        })
        self.tokens = TokenCache(self._mint)
        self.limits = RateLimits(clock)

    @classmethod
    def from_settings(cls, settings: GitHubSettings, clock: Callable[[], float] = time.time) -> GitHub:
        if settings.app_id is None:
            raise ConfigError("github.app_id is not set: give it the App's id (SHIPYARD_GITHUB__APP_ID, or app_id "
                              "in the github table of shipyard.toml)")
        if settings.private_key_path is None:
            raise ConfigError("github.private_key_path is not set: point it at the App's private key (.pem file)")
        return cls(settings.api_url, settings.app_id, load_private_key(settings.private_key_path), clock=clock)

    def close(self) -> None:
        self.http.close()

    def token(self, installation: int) -> str:
        """An installation token (git gets its tokens through `tokens.use`, as the API calls do)."""
        return self.tokens.get(installation)

    # -- endpoints ----------------------------------------------------------------

    def repository(self, installation: int, repo: str) -> RepoInfo:
        return RepoInfo.model_validate(self._call(installation, "GET", _repo(repo)).json())

    def may_write(self, installation: int, repo: str, user: str) -> bool:
        """Whether `user` has write access (write, maintain or admin) to the repository."""
        response = self._call(installation, "GET", f"{_repo(repo)}/collaborators/{quote(user)}/permission",
                              ok=(200, 404))
        if response.status_code == 404:
            # "No such collaborator" only if the repository itself is in sight: else this raises NotFound, and
            # the question is asked again later rather than answered "no" for good.
            self.repository(installation, repo)
            return False
        found = Permission.model_validate(response.json())
        return found.permission in WRITE_ROLES or found.role_name in WRITE_ROLES

    def comments(self, installation: int, repo: str, number: int) -> list[Comment]:
        """All comments of an issue or pull request's conversation, oldest first."""
        url: str | None = f"{_repo(repo)}/issues/{number}/comments?per_page=100"
        found: list[Comment] = []
        while url:
            response = self._call(installation, "GET", url)
            found += [Comment.model_validate(c) for c in response.json()]
            url = response.links.get("next", {}).get("url")
        return found

    def find_comment(self, installation: int, repo: str, number: int, key: str) -> int | None:
        """The id of the comment posted for `key`, if there is one."""
        marker = _marker(key)
        return next((c.id for c in self.comments(installation, repo, number) if marker in (c.body or "")), None)

    def comment(self, installation: int, repo: str, number: int, body: str, key: str) -> int:
        """Post the comment for `key` on an issue or pull request, once: the conversation is searched for it
        first (an earlier try may have posted it), and again whenever an answer is lost on the way."""
        text = _fit(body) + _marker(key)
        attempt = 0
        while True:
            attempt += 1
            found = self.find_comment(installation, repo, number, key)
            if found is not None:
                return found
            try:
                response = self._call(installation, "POST", f"{_repo(repo)}/issues/{number}/comments",
                                      json={"body": text}, ok=(201,), once=True)
            except OutcomeUnknown as exc:
                if attempt == ATTEMPTS:
                    raise
                log.warning("%s; looking for the comment before posting it again", exc)
                time.sleep(self.pause * 2**attempt)
                continue
            return int(response.json()["id"])

    def edit_comment(self, installation: int, repo: str, comment_id: int, body: str, key: str) -> None:
        """Replace the comment's text (NotFound if someone deleted it)."""
        self._call(installation, "PATCH", f"{_repo(repo)}/issues/comments/{comment_id}",
                   json={"body": _fit(body) + _marker(key)})

    def pull(self, installation: int, repo: str, number: int) -> PullInfo:
        return PullInfo.model_validate(self._call(installation, "GET", f"{_repo(repo)}/pulls/{number}").json())

    def find_pull(self, installation: int, repo: str, head: str) -> PullInfo | None:
        """The open pull request from branch `head` of the repository itself, if there is one."""
        owner = repo.split("/", 1)[0]
        response = self._call(installation, "GET", f"{_repo(repo)}/pulls",
                              params={"head": f"{owner}:{head}", "state": "open"})
        pulls = [PullInfo.model_validate(p) for p in response.json()]
        return pulls[0] if pulls else None

    def open_pull(self, installation: int, repo: str, *, title: str, head: str, base: str, body: str,
                  draft: bool) -> PullInfo:
        response = self._call(installation, "POST", f"{_repo(repo)}/pulls", ok=(201,), json={
            "title": title, "head": head, "base": base, "body": _fit(body), "draft": draft,
        })
        return PullInfo.model_validate(response.json())

    def file(self, installation: int, repo: str, path: str, ref: str) -> str | None:
        """A text file's content at `ref`; None if there is no such file."""
        response = self._call(installation, "GET", f"{_repo(repo)}/contents/{quote(path)}", params={"ref": ref},
                              ok=(200, 404))
        if response.status_code == 404:
            return None
        found = Contents.model_validate(response.json())
        if found.type != "file" or found.encoding != "base64" or found.content is None:
            raise GitHubError(f"{path} in {repo} is not a file GitHub sends whole (type {found.type})")
        return base64.b64decode(found.content).decode("utf-8", errors="replace")

    def run_jobs(self, installation: int, repo: str, run_id: int) -> list[ActionsJob]:
        """The jobs of a workflow run's latest attempt."""
        response = self._call(installation, "GET", f"{_repo(repo)}/actions/runs/{run_id}/jobs",
                              params={"per_page": 100})
        return [ActionsJob.model_validate(job) for job in response.json()["jobs"]]

    def job_log(self, installation: int, repo: str, job_id: int) -> str:
        """A workflow job's log, as plain text. GitHub answers with a redirect to a short-lived URL, which
        httpx follows without the token when it points elsewhere."""
        response = self._call(installation, "GET", f"{_repo(repo)}/actions/jobs/{job_id}/logs",
                              follow_redirects=True)
        return response.text

    def rerun_failed_jobs(self, installation: int, repo: str, run_id: int) -> None:
        """Run a workflow run's failed jobs (and the jobs that need them) again, as a new attempt."""
        self._call(installation, "POST", f"{_repo(repo)}/actions/runs/{run_id}/rerun-failed-jobs", ok=(201,))

    # -- plumbing -----------------------------------------------------------------

    def _mint(self, installation: int) -> InstallationToken:
        self.limits.check(installation)
        response = self._send("POST", f"/app/installations/{installation}/access_tokens",
                              auth=f"Bearer {app_jwt(self.app_id, self.private_key, time.time())}")
        self.limits.observe(installation, response)
        _check(response, (201,))
        return InstallationToken.model_validate(response.json())

    def _call(self, installation: int, method: str, url: str, *, ok: tuple[int, ...] = (200,), once: bool = False,
              **kwargs: Any) -> httpx.Response:
        self.limits.check(installation)

        def attempt(token: str) -> httpx.Response:
            response = self._send(method, url, auth=f"Bearer {token}", once=once, **kwargs)
            self.limits.observe(installation, response)
            if response.status_code == 401:
                raise TokenRejected(str(GitHubError.of(response)))
            return response

        response = self.tokens.use(installation, attempt)
        _check(response, ok)
        return response

    def _send(self, method: str, url: str, *, auth: str, once: bool = False, **kwargs: Any) -> httpx.Response:
        """One request, tried again after network errors and 5xx, unless `once`: then those mean
        OutcomeUnknown, for the caller to find out whether it was done. Rate limits are the caller's."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(method, url, headers={"Authorization": auth}, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if once:
                    raise OutcomeUnknown(f"GitHub {method} {url}: {problem}") from None
                if attempt == ATTEMPTS:
                    raise GitHubError(f"GitHub {method} {url}: {problem}") from None
            else:
                if response.status_code < 500 or attempt == ATTEMPTS:
                    return response
                problem = f"HTTP {response.status_code}"
                if once:
                    raise OutcomeUnknown(f"GitHub {method} {url}: {problem}")
            wait = self.pause * 2**attempt
            log.warning("GitHub %s %s: %s; trying again in %.0f s", method, url, problem, wait)
            time.sleep(wait)


def _check(response: httpx.Response, ok: tuple[int, ...]) -> None:
    if response.status_code not in ok:
        raise GitHubError.of(response)


def _repo(full_name: str) -> str:
    owner, _, name = full_name.partition("/")
    return f"/repos/{quote(owner)}/{quote(name)}"


def _marker(key: str) -> str:
    """Invisible in the rendered comment; found again by `find_comment`."""
    return f"\n\n<!-- shipyard:{key} -->"


def _fit(body: str) -> str:
    if len(body) <= MAX_BODY:
        return body
    return body[:MAX_BODY] + "\n\n(cut: GitHub takes no more)"
