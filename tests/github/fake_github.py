"""A fake GitHub over real HTTP on 127.0.0.1: the REST endpoints the App calls, and git's smart HTTP.

REST responses have the shapes of GitHub's REST docs (the fields the App reads and the usual
company). Every repository is a bare git repository on disk, served by `git http-backend`
under /git/<owner>/<name>.git, which is the repository's clone_url: like a private GitHub
repository, it takes only an installation token, sent as HTTP Basic auth for the user
`x-access-token`. Installation tokens come from POST /app/installations/<id>/access_tokens
against a JWT signed with the App's key, which is checked as GitHub checks it.

Tests can make it misbehave as GitHub does: rate limits (`rate_limit`), answers lost on the way
(`lose_answer`), repository rules that refuse pushes with GitHub's GH013 words (`add_rule`), tokens
revoked before their time (`tokens.clear()`, or `revoke_on_push`). GitHub Actions is in fake_actions.py.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fake_actions import FakeActions
from helpers import git
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

BOT = "shipyard-test[bot]"
DOCS = "https://docs.github.com/rest"
SECONDARY_LIMIT = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                   "If you reach out to GitHub Support for help, please include the request ID "
                   "8E1A:2B4C:1F0D3A:2C1E4B:67C58F12.")


class ServerThread:
    """Serve an ASGI app with uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Any):
        # IPPROTO_TCP named, or asyncio leaves Nagle on for its connections: 40 ms more per response.
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.socket.close()


@dataclass
class FakeComment:
    id: int
    repo: str
    number: int
    user: str
    body: str
    history: list[str] = field(default_factory=list)  # every body it had, the first one included

    @property
    def visible(self) -> str:
        """The body as GitHub shows it: without HTML comments (the App's markers)."""
        return re.sub(r"\s*<!--.*?-->", "", self.body, flags=re.DOTALL)


@dataclass
class FakePull:
    number: int
    repo: str
    title: str
    body: str
    head: str
    base: str
    draft: bool
    state: str = "open"


class FakeGitHub:
    def __init__(self, root: Path, app_id: int, public_key: RSAPublicKey):
        self.root = root
        self.app_id = app_id
        self.public_key = public_key
        self.token_lifetime = 3600.0
        self.down = False  # an outage: every request gets 503
        self.limited: dict[int, list[str]] = {}  # installation -> the limits its next requests run into
        self.lost: list[str] = []  # "POST /comments" and the like: the next such request is done, its answer lost
        self.revoke_on_push = False  # the next push finds every token revoked
        self.installations: dict[int, set[str]] = {}
        self.tokens: dict[str, tuple[int, float]] = {}  # token -> (installation, expires at)
        self.permissions: dict[tuple[str, str], str] = {}
        self.titles: dict[tuple[str, int], str] = {}
        self.comments: list[FakeComment] = []
        self.pulls: list[FakePull] = []
        self.requests: list[tuple[str, str]] = []  # (method, path), REST and git alike
        self.git_tokens: list[str] = []  # the tokens git requests came with
        self._ids = itertools.count(3_000_000_001)
        self._lock = threading.Lock()
        self.actions = FakeActions(self)
        self.server = ServerThread(self._app())
        self.url = self.server.url

    # -- set-up -------------------------------------------------------------------

    def add_repo(self, full_name: str, source: Path, installation: int) -> Path:
        """A repository cloned (bare) from `source`; its path."""
        bare = self.root / "remotes" / f"{full_name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(bare)], check=True)
        self.installations.setdefault(installation, set()).add(full_name)
        return bare

    def bare(self, full_name: str) -> Path:
        return self.root / "remotes" / f"{full_name}.git"

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/git/{full_name}.git"

    def open_pull(self, repo: str, number: int, title: str, head: str, base: str = "main") -> None:
        """A pull request someone opened (not the App)."""
        self.titles[(repo, number)] = title
        self.pulls.append(FakePull(number, repo, title, "", head, base, draft=False))

    def comments_on(self, repo: str, number: int) -> list[FakeComment]:
        return [c for c in self.comments if c.repo == repo and c.number == number]

    def add_comment(self, repo: str, number: int, user: str, body: str) -> FakeComment:
        """A comment a person wrote."""
        with self._lock:
            comment = FakeComment(next(self._ids), repo, number, user, body, [body])
            self.comments.append(comment)
        return comment

    def rate_limit(self, installation: int, *limits: str) -> None:
        """The installation's next requests run into these limits, in turn: "secondary" (403, no retry-after)
        or "primary" (403, x-ratelimit-remaining 0 until an hour from now)."""
        self.limited.setdefault(installation, []).extend(limits)

    def lose_answer(self, what: str) -> None:
        """The next request `what` (e.g. "POST /comments") is done, but its answer never arrives."""
        self.lost.append(what)

    def add_rule(self, full_name: str, pattern: str, rule: str) -> None:
        """A repository rule: pushes to branches matching the shell `pattern` are refused as GitHub refuses
        them, naming the rule in `remote:` lines (GH013). A pre-receive hook, which git runs for real."""
        hook = self.bare(full_name) / "hooks" / "pre-receive"
        hook.write_text(f"""#!/bin/sh
while read old new ref; do
  case "${{ref#refs/heads/}}" in
    {pattern})
      echo "error: GH013: Repository rule violations found for $ref." >&2
      echo "Review all repository rules at https://github.com/{full_name}/rules?ref=$ref" >&2
      echo "" >&2
      echo "- {rule}" >&2
      echo "" >&2
      exit 1;;
  esac
done
""")
        hook.chmod(0o755)

    def stop(self) -> None:
        self.server.stop()

    # -- the API --------------------------------------------------------------------

    def _app(self) -> Starlette:
        repo = "/repos/{owner}/{name}"
        routes = [
            Route("/app/installations/{installation:int}/access_tokens", self._access_token, methods=["POST"]),
            Route(repo, self._repository),
            Route(repo + "/collaborators/{user}/permission", self._permission),
            Route(repo + "/issues/{number:int}/comments", self._list_comments, methods=["GET"]),
            Route(repo + "/issues/{number:int}/comments", self._create_comment, methods=["POST"]),
            Route(repo + "/issues/comments/{comment_id:int}", self._edit_comment, methods=["PATCH"]),
            Route(repo + "/pulls", self._list_pulls, methods=["GET"]),
            Route(repo + "/pulls", self._create_pull, methods=["POST"]),
            Route(repo + "/pulls/{number:int}", self._get_pull),
            Route(repo + "/contents/{path:path}", self._contents),
            Route("/git/{owner}/{name}.git/{rest:path}", self._git, methods=["GET", "POST"]),
            *self.actions.routes(),
        ]
        # GitHub Enterprise Server serves the same API under /api/v3.
        return Starlette(routes=[*routes, Mount("/api/v3", routes=routes)])

    async def _access_token(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        if self.down:
            return _message(503, "Service Unavailable")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(bearer, self.public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=0)
        except jwt.PyJWTError as exc:
            return _message(401, f"A JSON web token could not be decoded ({exc})")
        if claims["iss"] != str(self.app_id) or claims["exp"] - claims["iat"] > 600:
            return _message(401, "'Expiration time' claim ('exp') is too far in the future")
        installation = request.path_params["installation"]
        if installation not in self.installations:
            return _message(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = time.time() + self.token_lifetime
        self.tokens[token] = (installation, expires)
        return JSONResponse(status_code=201, content={
            "token": token, "expires_at": _iso(expires),
            "permissions": {"contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write"},
            "repository_selection": "selected",
        })

    def authorized(self, request: Request, full_name: str) -> Response | None:
        """None when the request carries a live token of an installation on the repository, and no rate limit
        stands in its way."""
        self.requests.append((request.method, request.url.path))
        if self.down:
            return _message(503, "Service Unavailable")
        token = request.headers.get("authorization", "").removeprefix("Bearer ").removeprefix("token ")
        found = self.tokens.get(token)
        if found is None or found[1] < time.time():
            return _message(401, "Bad credentials")
        if self.limited.get(found[0]):
            return _limited(found[0], self.limited[found[0]].pop(0))
        if full_name not in self.installations.get(found[0], set()):
            return _message(404, "Not Found")
        return None

    async def _repository(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        return JSONResponse(self._repo_json(full_name))

    async def _permission(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        user = request.path_params["user"]
        permission = self.permissions.get((full_name, user))
        if permission is None:
            return _message(404, "Not Found")
        role = {"admin": "admin", "write": "write", "read": "read", "none": "none"}[permission]
        return JSONResponse({"permission": permission, "role_name": role, "user": _user(user)})

    async def _list_comments(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        number = request.path_params["number"]
        per_page = int(request.query_params.get("per_page", 30))
        page = int(request.query_params.get("page", 1))
        found = self.comments_on(full_name, number)
        chunk = found[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(found):
            headers["link"] = (f'<{self.url}{request.url.path}?per_page={per_page}&page={page + 1}>; rel="next"')
        return JSONResponse([self._comment_json(c) for c in chunk], headers=headers)

    async def _create_comment(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        body = (await request.json())["body"]
        with self._lock:
            comment = FakeComment(next(self._ids), full_name, request.path_params["number"], BOT, body, [body])
            self.comments.append(comment)
        if "POST /comments" in self.lost:
            self.lost.remove("POST /comments")
            return LostAnswer()
        return JSONResponse(self._comment_json(comment), status_code=201)

    async def _edit_comment(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        comment = next((c for c in self.comments if c.id == request.path_params["comment_id"]), None)
        if comment is None or comment.repo != full_name:
            return _message(404, "Not Found")
        comment.body = (await request.json())["body"]
        comment.history.append(comment.body)
        return JSONResponse(self._comment_json(comment))

    async def _list_pulls(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        head = request.query_params.get("head", "")
        state = request.query_params.get("state", "open")
        found = [p for p in self.pulls if p.repo == full_name and (not head or f"{_owner(full_name)}:{p.head}" == head)
                 and (state == "all" or p.state == state)]
        return JSONResponse([self._pull_json(p) for p in found])

    async def _create_pull(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        data = await request.json()
        if self._sha(full_name, data["head"]) is None:
            return _invalid("PullRequest", "head", "invalid")
        if any(p.repo == full_name and p.head == data["head"] and p.state == "open" for p in self.pulls):
            return _invalid("PullRequest", None, "custom",
                            f"A pull request already exists for {_owner(full_name)}:{data['head']}.")
        with self._lock:
            number = 1 + max([n for (r, n) in self.titles if r == full_name], default=0)
            self.titles[(full_name, number)] = data["title"]
            pull = FakePull(number, full_name, data["title"], data.get("body") or "", data["head"], data["base"],
                            bool(data.get("draft")))
            self.pulls.append(pull)
        return JSONResponse(self._pull_json(pull), status_code=201)

    async def _get_pull(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        pull = next((p for p in self.pulls if p.repo == full_name and p.number == request.path_params["number"]),
                    None)
        if pull is None:
            return _message(404, "Not Found")
        return JSONResponse(self._pull_json(pull))

    async def _contents(self, request: Request) -> Response:
        full_name = _full_name(request)
        if refused := self.authorized(request, full_name):
            return refused
        path = request.path_params["path"]
        ref = request.query_params.get("ref", "HEAD")
        shown = subprocess.run(["git", "--git-dir", str(self.bare(full_name)), "show", f"{ref}:{path}"],
                               capture_output=True, check=False)
        if shown.returncode != 0:
            return _message(404, "Not Found")
        encoded = base64.encodebytes(shown.stdout).decode()  # GitHub wraps the base64 in lines, too
        return JSONResponse({
            "type": "file", "encoding": "base64", "size": len(shown.stdout), "name": path.rsplit("/", 1)[-1],
            "path": path, "content": encoded, "sha": git(self.bare(full_name), "rev-parse", f"{ref}:{path}").strip(),
            "url": f"{self.url}/repos/{full_name}/contents/{path}?ref={ref}",
        })

    async def _git(self, request: Request) -> Response:
        """git's smart HTTP protocol, through `git http-backend` as a CGI program."""
        full_name = _full_name(request)
        self.requests.append((request.method, request.url.path))
        if self.down:
            return Response("Service Unavailable", status_code=503)
        if self.revoke_on_push and request.query_params.get("service") == "git-receive-pack":
            self.revoke_on_push = False
            self.tokens.clear()  # revoked before their time, as when the installation's permissions change
        token = _basic_token(request.headers.get("authorization", ""))
        found = self.tokens.get(token or "")
        if found is None or found[1] < time.time() or full_name not in self.installations.get(found[0], set()):
            return Response("Invalid username or token.", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="GitHub"'})
        self.git_tokens.append(token or "")
        body = await request.body()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "GIT_PROJECT_ROOT": str(self.root / "remotes"),
            "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": "x-access-token", "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": request.method, "PATH_INFO": f"/{full_name}.git/{request.path_params['rest']}",
            "QUERY_STRING": request.url.query, "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)), "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
            "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
        }
        pushing = request.path_params["rest"] == "git-receive-pack"
        before = self._branches(full_name) if pushing else {}
        done = await run_in_threadpool(subprocess.run, ["git", "http-backend"], input=body, env=env,
                                       capture_output=True, check=False)
        if pushing:
            for branch, sha in self._branches(full_name).items():
                if before.get(branch) != sha:
                    self.actions.pushed(full_name, branch, sha)
        head, _, content = done.stdout.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
        status = int(headers.pop("Status", "200").split()[0])
        return Response(content, status_code=status, headers=headers)

    # -- shapes ---------------------------------------------------------------------

    def _branches(self, full_name: str) -> dict[str, str]:
        listed = git(self.bare(full_name), "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split(" ", 1) for line in listed.splitlines())

    def _sha(self, full_name: str, branch: str) -> str | None:
        found = subprocess.run(["git", "--git-dir", str(self.bare(full_name)), "rev-parse", "--verify", "--quiet",
                                f"refs/heads/{branch}"], capture_output=True, text=True, check=False)
        return found.stdout.strip() or None

    def _repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": 718_204_311, "node_id": "R_kgDOKs5dVw", "name": name, "full_name": full_name, "private": True,
            "owner": _user(owner, "Organization"), "html_url": f"https://github.com/{full_name}",
            "description": "Widgets, made to order", "fork": False, "url": f"{self.url}/repos/{full_name}",
            "clone_url": self.clone_url(full_name), "default_branch": "main", "visibility": "private",
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def _comment_json(self, comment: FakeComment) -> dict[str, Any]:
        api = f"{self.url}/repos/{comment.repo}"
        bot = comment.user == BOT
        return {
            "id": comment.id, "node_id": "IC_kwDOKs5dV86jB0Zw", "url": f"{api}/issues/comments/{comment.id}",
            "html_url": f"https://github.com/{comment.repo}/issues/{comment.number}#issuecomment-{comment.id}",
            "body": comment.body, "user": _user(comment.user, "Bot" if bot else "User"),
            "created_at": "2025-03-03T08:15:40Z", "updated_at": "2025-03-03T08:15:40Z",
            "issue_url": f"{api}/issues/{comment.number}", "author_association": self._association(comment),
            "performed_via_github_app": {"id": self.app_id, "slug": "shipyard-test"} if bot else None,
        }

    def _association(self, comment: FakeComment) -> str:
        permission = self.permissions.get((comment.repo, comment.user))
        return {"admin": "OWNER", "write": "MEMBER", "read": "CONTRIBUTOR"}.get(permission or "", "NONE")

    def _pull_json(self, pull: FakePull) -> dict[str, Any]:
        repo = self._repo_json(pull.repo)

        def ref(branch: str) -> dict[str, Any]:
            return {"label": f"{_owner(pull.repo)}:{branch}", "ref": branch, "sha": self._sha(pull.repo, branch),
                    "user": repo["owner"], "repo": repo}

        return {
            "url": f"{self.url}/repos/{pull.repo}/pulls/{pull.number}", "id": 2_301_000_000 + pull.number,
            "node_id": "PR_kwDOKs5dV86JIY2b", "html_url": f"https://github.com/{pull.repo}/pull/{pull.number}",
            "number": pull.number, "state": pull.state, "locked": False, "title": pull.title, "body": pull.body,
            "user": _user(BOT, "Bot"), "draft": pull.draft, "head": ref(pull.head), "base": ref(pull.base),
            "merged": False, "mergeable": None, "created_at": "2025-03-03T09:00:02Z",
            "updated_at": "2025-03-03T09:00:02Z",
        }


def _full_name(request: Request) -> str:
    return f"{request.path_params['owner']}/{request.path_params['name']}"


def _owner(full_name: str) -> str:
    return full_name.split("/")[0]


def _user(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**8, "node_id": "MDQ6VXNlcjE=",
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}", "type": kind,
            "site_admin": False}


def _basic_token(header: str) -> str | None:
    if not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return password if user == "x-access-token" else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LostAnswer(Response):
    """The request was done, but the connection drops before its answer is whole."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"400"),
                                                                               (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})
        raise ConnectionResetError("the answer was lost on the way")


def _limited(installation: int, kind: str) -> JSONResponse:
    """GitHub's answers for its two kinds of rate limit, as its REST docs show them."""
    reset = str(int(time.time()) + 3600)
    if kind == "primary":
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                   "x-ratelimit-reset": reset, "x-ratelimit-resource": "core"}
        message = f"API rate limit exceeded for installation ID {installation}."
    else:
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4711", "x-ratelimit-used": "289",
                   "x-ratelimit-reset": reset, "x-ratelimit-resource": "core"}
        message = SECONDARY_LIMIT
    return JSONResponse({"message": message, "documentation_url": f"{DOCS}/using-the-rest-api/rate-limits-for-the-"
                         "rest-api", "status": "403"}, status_code=403, headers=headers)


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "documentation_url": DOCS, "status": str(status)}, status_code=status)


def _invalid(resource: str, field_name: str | None, code: str, message: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"resource": resource, "code": code}
    if field_name:
        error["field"] = field_name
    if message:
        error["message"] = message
    return JSONResponse({"message": "Validation Failed", "errors": [error], "documentation_url": DOCS,
                         "status": "422"}, status_code=422)
