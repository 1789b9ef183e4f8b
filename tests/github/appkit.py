"""A GitHub App deployment for tests: the fake GitHub, the App's webhook server and desk in this
process (uvicorn in a thread, as `shipyard github serve` runs them), and worker processes as in
tests/jobs, all over real HTTP and real git."""

from __future__ import annotations

import copy
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fake_github import FakeGitHub, ServerThread
from helpers import GIT_ENV, git
from jobs.jobkit import Deployment

from orchestrator.apps.github.records import Records
from orchestrator.apps.github.service import GitHubService
from orchestrator.apps.github.signature import sign
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director

PAYLOADS = Path(__file__).parent / "payloads"
REPO = "octo-org/widgets"
INSTALLATION = 4242
APP_ID = 777
SECRET = "a webhook secret for tests"
SECRET_ENV = "SHIPYARD_TEST_GITHUB_SECRET"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A stored payload with fields changed; nested keys with "__", e.g. comment__user__login="stranger"."""
    data = json.loads((PAYLOADS / f"{name}.json").read_text())
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for key in path:
            node = node[key]
        node[last] = copy.deepcopy(value)
    return data


class FakeClock:
    """A clock the test moves on by hand: GitHub's rate limits are waited out without waiting."""

    def __init__(self) -> None:
        self.now = time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class GitHubWorld:
    def __init__(self, root: Path, deployment: Deployment, key: RSAPrivateKey, clock: FakeClock | None = None):
        self.root = root
        self.deployment = deployment
        self.clock = clock
        self.fake = FakeGitHub(root / "github", APP_ID, key.public_key())
        self.remote = self.fake.add_repo(REPO, deployment.repo, INSTALLATION)
        self.fake.permissions[(REPO, "mona")] = "write"
        self.fake.permissions[(REPO, "stranger")] = "read"
        key_path = root / "app.pem"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        env = {**deployment.env, "SHIPYARD_GITHUB__APP_ID": str(APP_ID), "SHIPYARD_GITHUB__PRIVATE_KEY_PATH":
               str(key_path), "SHIPYARD_GITHUB__API_URL": self.fake.url,
               "SHIPYARD_GITHUB__WEBHOOK_SECRET_ENV": SECRET_ENV, SECRET_ENV: SECRET}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                if name.startswith("SHIPYARD_"):
                    patch.setenv(name, value)
            self.settings = load_settings(root)
            self.service = GitHubService(self.settings, poll=0.2, clock=clock or time.time)
        self.server = ServerThread(self.service.app)
        self.http = httpx.Client(base_url=self.server.url, timeout=30)
        self.fake.actions.deliver_to(f"{self.server.url}/webhook", SECRET)

    @property
    def runner(self) -> Director:
        return self.service.desk.jobs.director

    @property
    def records(self) -> Records:
        return self.service.desk.records

    def send(self, event: str, body: dict[str, Any] | bytes, delivery: str | None = None,
             signature: str | None = "sign") -> httpx.Response:
        """POST a delivery as GitHub does; signature "sign" signs it with the App's secret, None leaves it out."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                   "X-GitHub-Hook-ID": "512234771", "User-Agent": "GitHub-Hookshot/7f9e2c1",
                   "Content-Type": "application/json", "X-GitHub-Hook-Installation-Target-Type": "integration",
                   "X-GitHub-Hook-Installation-Target-ID": str(APP_ID)}
        if signature is not None:
            headers["X-Hub-Signature-256"] = sign(SECRET, raw) if signature == "sign" else signature
        return self.http.post("/webhook", content=raw, headers=headers)

    def commit(self, branch: str, files: dict[str, str], base: str = "main") -> str:
        """A commit by a person on the remote's `branch` (made from `base` if new); its sha."""
        work = self.root / f"work-{uuid.uuid4().hex[:6]}"
        subprocess.run(["git", "clone", "--quiet", str(self.remote), str(work)], check=True, env=GIT_ENV)
        git(work, "checkout", "-q", "-B", branch, f"origin/{branch}" if self.branch_sha(branch) else base)
        for name, text in files.items():
            (work / name).write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"edit {', '.join(files)}")
        git(work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return git(work, "rev-parse", "HEAD").strip()

    def branch_sha(self, branch: str) -> str | None:
        found = subprocess.run(["git", "--git-dir", str(self.remote), "rev-parse", "--verify", "--quiet",
                                f"refs/heads/{branch}"], capture_output=True, text=True, check=False)
        return found.stdout.strip() or None

    def status_comments(self, number: int) -> list[Any]:
        return [c for c in self.fake.comments_on(REPO, number) if c.body.startswith("**Shipyard** job")]

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        self.fake.stop()
