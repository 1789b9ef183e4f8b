"""The handful of GitHub REST endpoints the App calls, each as an installation of the App."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import BaseModel

from orchestrator.apps.github.auth import InstallationToken, TokenCache, app_jwt, load_private_key
from orchestrator.apps.github.payloads import User
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
        if not isinstance(data, dict):
            data = {}
        what = str(data.get("message") or response.reason_phrase)
        details = [str(e.get("message") or e.get("code")) for e in data.get("errors", []) if isinstance(e, dict)]
        if details:
            what += f" ({'; '.join(details)})"
        request = response.request
        return cls(f"GitHub {request.method} {request.url.path}: {response.status_code} {what}")


class RepoInfo(BaseModel):
    full_name: str
    default_branch: str
    clone_url: str
    private: bool = False


class Comment(BaseModel):
    id: int
    body: str | None = None
    user: User


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


class GitHub:
    def __init__(self, api_url: str, app_id: int, private_key: RSAPrivateKey, timeout: float = 30.0,
                 pause: float = 1.0):
        self.app_id = app_id
        self.private_key = private_key
        self.pause = pause
        self.http = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, headers={
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "shipyard-github-app",
        })
        self.tokens = TokenCache(self._mint)

    @classmethod
    def from_settings(cls, settings: GitHubSettings) -> GitHub:
        if settings.app_id is None:
            raise ConfigError("github.app_id is not set: give it the App's id (SHIPYARD_GITHUB__APP_ID, or app_id "
                              "in the github table of shipyard.toml)")
        if settings.private_key_path is None:
            raise ConfigError("github.private_key_path is not set: point it at the App's private key (.pem file)")
        return cls(settings.api_url, settings.app_id, load_private_key(settings.private_key_path))

    def close(self) -> None:
        self.http.close()

    def token(self, installation: int) -> str:
        """An installation token, e.g. for git over HTTPS."""
        return self.tokens.get(installation)

    # -- endpoints ----------------------------------------------------------------

    def repository(self, installation: int, repo: str) -> RepoInfo:
        return RepoInfo.model_validate(self._call(installation, "GET", _repo(repo)).json())

    def may_write(self, installation: int, repo: str, user: str) -> bool:
        """Whether `user` has write access (write, maintain or admin) to the repository."""
        response = self._call(installation, "GET", f"{_repo(repo)}/collaborators/{quote(user)}/permission",
                              ok=(200, 404))
        if response.status_code == 404:  # not a user GitHub knows
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

    def comment(self, installation: int, repo: str, number: int, body: str) -> int:
        """Post a comment on an issue or pull request; its id."""
        response = self._call(installation, "POST", f"{_repo(repo)}/issues/{number}/comments",
                              json={"body": _fit(body)}, ok=(201,))
        return int(response.json()["id"])

    def edit_comment(self, installation: int, repo: str, comment_id: int, body: str) -> None:
        self._call(installation, "PATCH", f"{_repo(repo)}/issues/comments/{comment_id}", json={"body": _fit(body)})

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

    # -- plumbing -----------------------------------------------------------------

    def _mint(self, installation: int) -> InstallationToken:
        response = self._send("POST", f"/app/installations/{installation}/access_tokens",
                              auth=f"Bearer {app_jwt(self.app_id, self.private_key, time.time())}")
        _check(response, (201,))
        return InstallationToken.model_validate(response.json())

    def _call(self, installation: int, method: str, url: str, *, ok: tuple[int, ...] = (200,),
              **kwargs: Any) -> httpx.Response:
        response = self._send(method, url, auth=f"Bearer {self.tokens.get(installation)}", **kwargs)
        if response.status_code == 401:  # revoked early (the installation changed): one more try with a new token
            self.tokens.forget(installation)
            response = self._send(method, url, auth=f"Bearer {self.tokens.get(installation)}", **kwargs)
        _check(response, ok)
        return response

    def _send(self, method: str, url: str, *, auth: str, **kwargs: Any) -> httpx.Response:
        """One request, tried again after network errors, 5xx and rate limits (waiting as GitHub asks)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(method, url, headers={"Authorization": auth}, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if attempt == ATTEMPTS:
                    raise GitHubError(f"GitHub {method} {url}: {problem}") from None
                wait = self.pause * 2**attempt
            else:
                wait = _rate_limit_wait(response)
                if attempt == ATTEMPTS or (response.status_code < 500 and wait is None):
                    return response
                problem = f"HTTP {response.status_code}"
                wait = self.pause * 2**attempt if wait is None else wait
            log.warning("GitHub %s %s: %s; trying again in %.0f s", method, url, problem, wait)
            time.sleep(wait)


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds to wait when GitHub says the App went over a rate limit (capped at a minute); else None."""
    headers = response.headers
    if response.status_code == 429 or (response.status_code == 403 and "retry-after" in headers):
        return min(float(headers.get("retry-after", 60)), 60.0)
    if response.status_code == 403 and headers.get("x-ratelimit-remaining") == "0":
        return min(max(float(headers.get("x-ratelimit-reset", 0)) - time.time(), 1.0), 60.0)
    return None


def _check(response: httpx.Response, ok: tuple[int, ...]) -> None:
    if response.status_code not in ok:
        raise GitHubError.of(response)


def _repo(full_name: str) -> str:
    owner, _, name = full_name.partition("/")
    return f"/repos/{quote(owner)}/{quote(name)}"


def _fit(body: str) -> str:
    if len(body) <= MAX_BODY:
        return body
    return body[:MAX_BODY] + "\n\n(cut: GitHub takes no more)"
