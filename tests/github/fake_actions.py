"""GitHub Actions in the fake GitHub: a workflow `CI` that runs on every push to a branch other than the
default one, its runs and their jobs, the jobs' logs, re-runs of failed jobs, and the webhooks GitHub
sends about them (signed, as GitHub signs them, to the App's webhook URL).

What a run concludes is up to the test: a rule given the files at the pushed commit and the run's
attempt (1, then 2 and more for re-runs) says whether it passes, and what its log says.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from fake_github import FakeGitHub

PAYLOADS = Path(__file__).parent / "payloads"
# (files at the commit, attempt) -> (passed, what the job printed)
CIRule = Callable[[set[str], int], tuple[bool, str]]
ACTIONS_APP = {"id": 15368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=", "name": "GitHub Actions",
               "description": "Automate your workflow from idea to production",
               "external_url": "https://help.github.com/en/actions", "html_url": "https://github.com/apps/github-actions",
               "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-04-10T20:33:16Z"}


@dataclass
class FakeJob:
    id: int
    name: str
    passed: bool = False
    log: str = ""


@dataclass
class FakeRun:
    id: int
    repo: str
    branch: str
    sha: str
    attempt: int = 1
    status: str = "queued"
    jobs: list[FakeJob] = field(default_factory=list)

    @property
    def conclusion(self) -> str | None:
        if self.status != "completed":
            return None
        return "success" if all(job.passed for job in self.jobs) else "failure"


class FakeActions:
    def __init__(self, github: FakeGitHub):
        self.github = github
        self.rules: dict[str, CIRule] = {}
        self.runs: list[FakeRun] = []
        self.reruns: list[int] = []  # run ids, as re-run requests came
        self.hook: tuple[str, str] | None = None  # the App's webhook URL and secret
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (event, payload) of every webhook sent
        self._ids = itertools.count(13_400_200_001)
        self._lock = threading.Lock()

    def workflow(self, repo: str, rule: CIRule) -> None:
        """Run `CI` on every push to a branch of `repo` other than main, concluding as `rule` says."""
        self.rules[repo] = rule

    def deliver_to(self, url: str, secret: str) -> None:
        self.hook = (url, secret)

    def runs_on(self, branch: str) -> list[FakeRun]:
        return [run for run in self.runs if run.branch == branch]

    def pushed(self, repo: str, branch: str, sha: str) -> None:
        """A branch moved (the fake's git endpoint says so): start a run, as a push would."""
        if repo not in self.rules or branch == "main":
            return
        with self._lock:
            run = FakeRun(next(self._ids), repo, branch, sha, jobs=[FakeJob(next(self._ids), "test")])
            self.runs.append(run)
        threading.Thread(target=self._run, args=(run,), daemon=True).start()

    def routes(self) -> list[Route]:
        repo = "/repos/{owner}/{name}/actions"
        return [
            Route(repo + "/runs/{run_id:int}/jobs", self._jobs),
            Route(repo + "/runs/{run_id:int}/rerun-failed-jobs", self._rerun, methods=["POST"]),
            Route(repo + "/jobs/{job_id:int}/logs", self._logs),
            Route("/_blobs/actions/jobs/{job_id:int}/log.txt", self._blob),
        ]

    # -- running ----------------------------------------------------------------------

    def _run(self, run: FakeRun) -> None:
        self._send("workflow_run", self._run_payload(run, "requested"))
        listed = subprocess.run(["git", "--git-dir", str(self.github.bare(run.repo)), "ls-tree", "-r", "--name-only",
                                 run.sha], capture_output=True, text=True, check=True)
        files = set(listed.stdout.split())
        for job in run.jobs:
            if job.passed:
                continue  # a re-run of failed jobs runs only those
            job.passed, printed = self.rules[run.repo](files, run.attempt)
            job.log = "".join(f"2025-03-03T09:0{n % 10}:1{n % 6}.{n:07d}Z {line}\n"
                              for n, line in enumerate(["Run make test", *printed.splitlines()]))
        run.status = "completed"
        for job in run.jobs:  # the check runs of the jobs, which the App must leave to the workflow run
            self._send("check_run", self._check_payload(run, job))
        self._send("workflow_run", self._run_payload(run, "completed"))

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        self.sent.append((event, payload))
        if self.hook is None:
            return
        url, secret = self.hook
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        httpx.post(url, content=body, timeout=30, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature,
            "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/7f9e2c1"})

    # -- the API ----------------------------------------------------------------------

    async def _jobs(self, request: Request) -> Response:
        run = self._find(request)
        if isinstance(run, Response):
            return run
        return JSONResponse({"total_count": len(run.jobs), "jobs": [self._job_json(run, j) for j in run.jobs]})

    async def _rerun(self, request: Request) -> Response:
        run = self._find(request)
        if isinstance(run, Response):
            return run
        if run.status != "completed" or run.conclusion == "success":
            return JSONResponse({"message": "This workflow run cannot be rerun", "status": "403"}, status_code=403)
        self.reruns.append(run.id)
        run.attempt += 1
        run.status = "queued"
        threading.Thread(target=self._run, args=(run,), daemon=True).start()
        return JSONResponse({}, status_code=201)

    async def _logs(self, request: Request) -> Response:
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        if refused := self.github.authorized(request, full_name):
            return refused
        job_id = request.path_params["job_id"]
        if not any(job.id == job_id for run in self.runs for job in run.jobs):
            return JSONResponse({"message": "Not Found", "status": "404"}, status_code=404)
        # GitHub answers with a short-lived URL elsewhere, which needs no token.
        return RedirectResponse(f"{self.github.url}/_blobs/actions/jobs/{job_id}/log.txt?sig={uuid.uuid4().hex}",
                                status_code=302)

    async def _blob(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        job = next((j for run in self.runs for j in run.jobs if j.id == job_id), None)
        if job is None or "sig" not in request.query_params:
            return PlainTextResponse("AuthenticationFailed", status_code=403)
        return PlainTextResponse(job.log)

    def _find(self, request: Request) -> FakeRun | Response:
        full_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        if refused := self.github.authorized(request, full_name):
            return refused
        run = next((r for r in self.runs if r.id == request.path_params["run_id"] and r.repo == full_name), None)
        if run is None:
            return JSONResponse({"message": "Not Found", "status": "404"}, status_code=404)
        return run

    # -- shapes -------------------------------------------------------------------------

    def _run_payload(self, run: FakeRun, action: str) -> dict[str, Any]:
        data = json.loads((PAYLOADS / "workflow_run.completed.json").read_text())
        data["action"] = action
        data["workflow_run"].update(
            id=run.id, head_branch=run.branch, head_sha=run.sha, run_attempt=run.attempt,
            status="completed" if action == "completed" else "queued",
            conclusion=run.conclusion if action == "completed" else None, pull_requests=self._pulls(run),
            url=f"{self.github.url}/repos/{run.repo}/actions/runs/{run.id}",
            jobs_url=f"{self.github.url}/repos/{run.repo}/actions/runs/{run.id}/jobs")
        data["workflow_run"]["head_commit"]["id"] = run.sha
        return data

    def _check_payload(self, run: FakeRun, job: FakeJob) -> dict[str, Any]:
        data = json.loads((PAYLOADS / "check_run.completed.json").read_text())
        check = data["check_run"]
        check.update(id=job.id, name=job.name, head_sha=run.sha, conclusion="success" if job.passed else "failure",
                     app=copy.deepcopy(ACTIONS_APP), pull_requests=self._pulls(run),
                     details_url=f"https://github.com/{run.repo}/actions/runs/{run.id}/job/{job.id}")
        check["output"] = {"title": None, "summary": None, "text": None, "annotations_count": 0,
                           "annotations_url": f"{self.github.url}/repos/{run.repo}/check-runs/{job.id}/annotations"}
        check["check_suite"].update(head_branch=run.branch, head_sha=run.sha, app=copy.deepcopy(ACTIONS_APP),
                                    conclusion=run.conclusion, pull_requests=self._pulls(run))
        return data

    def _pulls(self, run: FakeRun) -> list[dict[str, Any]]:
        return [{"url": f"{self.github.url}/repos/{run.repo}/pulls/{p.number}", "id": 2_301_000_000 + p.number,
                 "number": p.number, "head": {"ref": p.head, "sha": run.sha}, "base": {"ref": p.base}}
                for p in self.github.pulls if p.repo == run.repo and p.head == run.branch and p.state == "open"]

    def _job_json(self, run: FakeRun, job: FakeJob) -> dict[str, Any]:
        api = f"{self.github.url}/repos/{run.repo}/actions"
        conclusion = ("success" if job.passed else "failure") if run.status == "completed" else None
        return {
            "id": job.id, "run_id": run.id, "run_url": f"{api}/runs/{run.id}", "run_attempt": run.attempt,
            "node_id": "CR_kwDOKs5dV88AAAAI-wL2Mg", "head_sha": run.sha, "head_branch": run.branch,
            "url": f"{api}/jobs/{job.id}", "html_url": f"https://github.com/{run.repo}/actions/runs/{run.id}/job/{job.id}",
            "status": "completed" if run.status == "completed" else "queued", "conclusion": conclusion,
            "created_at": "2025-03-03T09:00:05Z", "started_at": "2025-03-03T09:00:08Z",
            "completed_at": "2025-03-03T09:01:10Z", "name": job.name, "workflow_name": "CI",
            "steps": [{"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1},
                      {"name": "Run make test", "status": "completed", "conclusion": conclusion, "number": 2}],
            "check_run_url": f"{self.github.url}/repos/{run.repo}/check-runs/{job.id}",
            "labels": ["ubuntu-latest"], "runner_id": 4, "runner_name": "GitHub Actions 4", "runner_group_id": 0,
            "runner_group_name": "GitHub Actions",
        }
