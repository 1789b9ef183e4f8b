"""Real deployments for the job tests: a repo, a scripted model server, a database, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import call as tool_call
from helpers import make_repo

from agents.scripted_model import ScriptedModelServer
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.events import Event
from orchestrator.store.jobs import JobStatus, Task


class WorkerProcess:
    """A `shipyard serve` process; its output goes to a log file, printed when a test fails."""

    def __init__(self, env: dict[str, str], log: Path, *args: str):
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "serve", *args], env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: int) -> None:
        """Signal the worker and whatever it started (its sandboxes)."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def dump_stacks(self) -> None:
        """Have the worker print every thread's stack to its log (`shipyard serve` on SIGUSR1)."""
        size = self.log.stat().st_size
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10  # a teardown: what it printed by then will do
        while self.log.stat().st_size == size and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash would; reaped at once so that its pid is really gone."""
        self.signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


# One subtask, every answer repeatable: any number of jobs can share the script.
def quick_script(latency: float = 0.25, coder_latency: float | None = None,
                 once_latency: float | None = None) -> dict[str, Any]:
    """A one-note job; every coder's first answer takes `coder_latency`, or only the very first one
    `once_latency` (the jobs after it go at `latency`)."""
    first_coder = {"match": {"role": "coder", "last_role": "user"}, "repeat": True,
                   "tool_calls": [tool_call("create_file", path="NOTE.md", content="noted\n")]}
    if coder_latency is not None:
        first_coder["latency"] = coder_latency
    once = [{**first_coder, "repeat": False, "latency": once_latency}] if once_latency is not None else []
    return {"latency": latency, "responses": [
        {"match": {"role": "planner"}, "repeat": True, "tool_calls": [tool_call(
            "submit_plan", summary="One note.", subtasks=[{
                "id": "s1", "title": "Add a note", "instructions": "Create NOTE.md", "files": ["NOTE.md"],
                "acceptance": ["NOTE.md exists"]}])]},
        *once,
        first_coder,
        {"match": {"role": "coder", "last_role": "tool"}, "repeat": True,
         "tool_calls": [tool_call("submit", summary="Added NOTE.md.")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [tool_call("submit_review", decision="approve", summary="Fine.")]},
    ]}


class Deployment:
    """A repo, a scripted model server, a database and the workers serving it, all real."""

    def __init__(self, root: Path, database_url: str | None, script: dict[str, Any], **settings: str):
        self.root = root
        self.repo = make_repo(root / "repo", {"README.md": "hello\n"})
        self.server = ScriptedModelServer(script).start()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
            "SHIPYARD_STATE_DIR": str(root / "state"),
            "SHIPYARD_SANDBOX__BACKEND": "bubblewrap",
            "SHIPYARD_MODELS__DEFAULT__BASE_URL": self.server.base_url,
            "SHIPYARD_MODELS__DEFAULT__MODEL": "scripted",
            "SHIPYARD_TEST_COMMAND": "test -f README.md",
            "SHIPYARD_WORKERS__HEARTBEAT": "0.5",
            "SHIPYARD_WORKERS__LEASE": "2",
            "SHIPYARD_WORKERS__POLL": "0.2",
            **({"SHIPYARD_DATABASE_URL": database_url} if database_url else {}),
            **{f"SHIPYARD_{k.upper()}": v for k, v in settings.items()},
        }
        self.workers: list[WorkerProcess] = []
        self._runner: Director | None = None

    @property
    def runner(self) -> Director:
        """A runner in this process, on the same settings as the workers."""
        if self._runner is None:
            with pytest.MonkeyPatch.context() as patch:
                for key, value in self.env.items():
                    if key.startswith("SHIPYARD_"):
                        patch.setenv(key, value)
                self._runner = Director(load_settings(self.root))
        return self._runner

    def start_worker(self, *args: str) -> WorkerProcess:
        worker = WorkerProcess(self.env, self.root / f"worker{len(self.workers)}.log", *args)
        self.workers.append(worker)
        return worker

    def submit(self, instruction: str, approve_plan: bool = False) -> str:
        job = self.runner.submit(Task(instruction=instruction, repo=str(self.repo), base="main",
                                      approve_plan=approve_plan))
        self.runner.queue.enqueue(job.id)
        return job.id

    def shipyard(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=self.env, cwd=self.root, check=False,
                              capture_output=True, text=True, timeout=timeout)

    def status(self, job_id: str) -> JobStatus:
        return self.runner.get(job_id).status

    def wait_status(self, job_ids: list[str], statuses: set[JobStatus], timeout: float = 90) -> None:
        """Wait until every job is in one of `statuses`; fail at once when one has finished in another."""
        def reached() -> bool:
            jobs = [self.runner.get(j) for j in job_ids]
            ended_otherwise = [j for j in jobs if j.status.finished and j.status not in statuses]
            if ended_otherwise:
                pytest.fail("; ".join(f"job {j.id} ended {j.status.value}: {j.error}" for j in ended_otherwise))
            return all(j.status in statuses for j in jobs)

        wait_for(reached, timeout,
                 lambda: f"jobs {job_ids} to reach {sorted(statuses)}; at the deadline "
                         f"{[self.status(j).value for j in job_ids]}; the queue: {self.queue_state()}")

    def queue_state(self) -> list[str]:
        """The queue's workflows as DBOS has them (status, executor), for a test that timed out."""
        return [f"{w.workflow_id} {w.status} on {w.executor_id}" for w in self.runner.queue.client().list_workflows(
            load_input=False, load_output=False)]

    def events(self, job_id: str, *kinds: str) -> list[Event]:
        return [e for e in self.runner.events(job_id) if not kinds or e.kind in kinds]

    def close(self, failed: bool = False) -> list[str]:
        """Stop everything; the workers' logs, for a failed test (with their threads' stacks when `failed`)."""
        for worker in self.workers:
            if failed and worker.process.poll() is None:
                worker.dump_stacks()
            worker.stop()
        self.server.stop()
        if self._runner is not None:
            self._runner.queue.close()
        tail = 30_000 if failed else 5000  # the stacks of a worker's every thread
        return [f"--- {w.log.name}\n{w.log.read_text(errors='replace')[-tail:]}" for w in self.workers]


def wait_for(condition, timeout: float, what: str | Callable[[], str], poll: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll `condition` until it returns something truthy; fail with `what` on timeout (a callable is asked
    then, so that it can say how things stand at the deadline rather than when the wait began)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
