"""The job queue and its workers, on SQLite and on PostgreSQL, measured in one run.

1. Pick-up latency: single jobs enqueued one at a time to an idle worker; the time until
   its workflow leaves the ENQUEUED state (the worker polls every workers.poll seconds).
2. Queue throughput: N jobs enqueued through `shipyard submit`'s path (DBOS client plus
   the job.queued event) while one worker takes them (claim, advance, notify): enqueues
   per second, and jobs from first enqueue to last done per second. The jobs are
   cancelled beforehand, so the figures are the queue's and not the agents'.
3. Memory: the RSS of a worker running 8 real jobs at once (scripted model with latency,
   bubblewrap sandboxes), against the same worker idle.

    python -m bench.jobs_bench [--jobs N] [--pickups N] [--latency S]

PostgreSQL comes from a throwaway cluster (tests/jobs/throwaway_pg.py); the ratios
printed are PostgreSQL against SQLite, and the loaded worker against the idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from agents.scripted_model import ScriptedModelServer
from bench.common import write_results
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.runtime.queue import QUEUE_NAME
from orchestrator.store.db import workers
from orchestrator.store.jobs import JobStatus, Task
from tests.helpers import call, make_repo
from tests.jobs.throwaway_pg import ThrowawayPostgres, unavailable_reason


def _script(latency: float) -> dict[str, Any]:
    """One subtask, every answer repeatable: any number of jobs share it."""
    plan = call("submit_plan", summary="One note.", subtasks=[
        {"id": "s1", "title": "Add a note", "instructions": "Create NOTE.md", "files": ["NOTE.md"]}])
    return {"latency": latency, "responses": [
        {"match": {"role": "planner"}, "repeat": True, "tool_calls": [plan]},
        {"match": {"role": "coder", "last_role": "user"}, "repeat": True,
         "tool_calls": [call("create_file", path="NOTE.md", content="noted\n")]},
        {"match": {"role": "coder", "last_role": "tool"}, "repeat": True,
         "tool_calls": [call("submit", summary="Added NOTE.md.")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="Fine.")]},
    ]}


class Site:
    """A state dir, a database (SQLite unless a URL is given) and the env a worker process needs."""

    def __init__(self, root: Path, database_url: str | None, model_url: str, concurrency: int):
        self.root = root
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
            "SHIPYARD_STATE_DIR": str(root / "state"),
            "SHIPYARD_SANDBOX__BACKEND": "bubblewrap",
            "SHIPYARD_MODELS__DEFAULT__BASE_URL": model_url,
            "SHIPYARD_MODELS__DEFAULT__MODEL": "scripted",
            "SHIPYARD_TEST_COMMAND": "test -f README.md",
            "SHIPYARD_WORKERS__CONCURRENCY": str(concurrency),
            **({"SHIPYARD_DATABASE_URL": database_url} if database_url else {}),
        }
        os.environ.update(self.env)
        try:
            self.runner = Director(load_settings(root))
        finally:
            for key in self.env:
                if key.startswith("SHIPYARD_"):
                    del os.environ[key]
        self.repo = make_repo(root / "repo", {"README.md": "hello\n"})

    @contextmanager
    def worker(self) -> Iterator[subprocess.Popen[bytes]]:
        with open(self.root / "worker.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve"], env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(lambda: self._registered(), 60, "the worker to start")
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)

    def _registered(self) -> bool:
        with self.runner.records.jobs.engine.connect() as conn:
            return conn.execute(select(workers.c.id)).first() is not None

    def cancelled_job(self) -> str:
        job = self.runner.records.jobs.create(Task(instruction="bench", repo=str(self.repo)))
        self.runner.records.jobs.update(job.id, JobStatus.CANCELLED)
        return job.id

    def state(self, job_id: str) -> str:
        """The DBOS status of the job's (one) queue workflow."""
        flows = self.runner.queue.client().list_workflows(workflow_id_prefix=f"{job_id}.", queue_name=QUEUE_NAME,
                                                           load_input=False, load_output=False)
        return flows[0].status if flows else "MISSING"

    def finished(self) -> int:
        return len(self.runner.queue.client().list_workflows(queue_name=QUEUE_NAME, status="SUCCESS",
                                                             load_input=False, load_output=False))


def queue_figures(site: Site, jobs: int, pickups: int) -> dict[str, float]:
    with site.worker():
        time.sleep(1)  # let it settle into polling
        latencies = []
        for _ in range(pickups):
            job_id = site.cancelled_job()
            started = time.perf_counter()
            site.runner.queue.enqueue(job_id)
            _wait(lambda j=job_id: site.state(j) != "ENQUEUED", 60, "a pick-up", poll=0.005)
            latencies.append(time.perf_counter() - started)
            time.sleep(random.uniform(0.1, 0.6))  # enqueue at no fixed phase of the worker's polling
        ids = [site.cancelled_job() for _ in range(jobs)]
        started = time.perf_counter()
        for job_id in ids:
            site.runner.queue.enqueue(job_id)
        enqueued = time.perf_counter() - started
        _wait(lambda: site.finished() == pickups + jobs, 300, "the queue to drain", poll=0.05)
        through = time.perf_counter() - started
    return {
        "enqueue_per_s": jobs / enqueued,
        "enqueue_to_done_per_s": jobs / through,
        "pickup_median_s": statistics.median(latencies),
        "pickup_max_s": max(latencies),
    }


def memory_figures(site: Site, jobs: int) -> dict[str, float]:
    with site.worker() as worker:
        time.sleep(2)
        idle = _rss_kib(worker.pid)
        ids = []
        for n in range(jobs):
            job = site.runner.submit(Task(instruction=f"add note {n}", repo=str(site.repo), base="main"))
            site.runner.queue.enqueue(job.id)
            ids.append(job.id)
        peak = idle
        running_peak = 0
        while not all(site.runner.get(j).status.finished for j in ids):
            peak = max(peak, _rss_kib(worker.pid))
            claimed = sum(1 for j in ids for e in site.runner.events(j) if e.kind == "worker.claimed")
            released = sum(1 for j in ids for e in site.runner.events(j) if e.kind == "worker.released")
            running_peak = max(running_peak, claimed - released)
            time.sleep(0.2)
    failed = [j for j in ids if site.runner.get(j).status != JobStatus.SUCCEEDED]
    if failed:
        raise RuntimeError(f"jobs {failed} did not succeed; see {site.root / 'worker.log'}")
    return {"idle_rss_mib": idle / 1024, "rss_with_8_jobs_mib": peak / 1024, "jobs_running_at_once": running_peak}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait(condition: Any, timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(poll)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs through the queue per database")
    parser.add_argument("--pickups", type=int, default=10, help="single-job pick-ups timed per database")
    parser.add_argument("--latency", type=float, default=1.0, help="model seconds per answer in the memory run")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        sys.exit(f"jobs_bench needs PostgreSQL: {reason}")

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-jobs-bench-") as tmp, ThrowawayPostgres() as cluster, \
            ScriptedModelServer(_script(args.latency)) as server:
        root = Path(tmp)
        for name, url in (("sqlite", None), ("postgres", cluster.create_database())):
            site = Site(root / name, url, server.base_url, concurrency=8)
            figures[name] = queue_figures(site, args.jobs, args.pickups)
            site.runner.queue.close()
            mine = figures[name]
            print(f"{name:8} enqueue {mine['enqueue_per_s']:7.1f}/s  "
                  f"enqueue-to-done {mine['enqueue_to_done_per_s']:6.1f}/s  "
                  f"pick-up median {mine['pickup_median_s']:.2f}s max {mine['pickup_max_s']:.2f}s")
        memory_site = Site(root / "memory", None, server.base_url, concurrency=8)
        figures["memory"] = memory_figures(memory_site, 8)
        memory_site.runner.queue.close()
    memory = figures["memory"]
    pg, lite = figures["postgres"], figures["sqlite"]
    figures["ratios"] = {
        "postgres_vs_sqlite_enqueue": pg["enqueue_per_s"] / lite["enqueue_per_s"],
        "postgres_vs_sqlite_enqueue_to_done": pg["enqueue_to_done_per_s"] / lite["enqueue_to_done_per_s"],
        "postgres_vs_sqlite_pickup": pg["pickup_median_s"] / lite["pickup_median_s"],
        "rss_8_jobs_vs_idle": memory["rss_with_8_jobs_mib"] / memory["idle_rss_mib"],
    }
    print(f"worker RSS idle {memory['idle_rss_mib']:.0f} MiB, with {memory['jobs_running_at_once']} jobs at once "
          f"{memory['rss_with_8_jobs_mib']:.0f} MiB (x{figures['ratios']['rss_8_jobs_vs_idle']:.2f})")
    print("PostgreSQL / SQLite: " + ", ".join(f"{k.removeprefix('postgres_vs_sqlite_')} x{v:.2f}"
                                              for k, v in figures["ratios"].items() if k.startswith("postgres")))
    settings = {"workers.poll_s": memory_site.runner.settings.workers.poll, "jobs": args.jobs,
                "pickups": args.pickups, "model_latency_s": args.latency}
    path = write_results("jobs_bench", {"settings": settings, **figures})
    print(f"wrote {path}")
    print(json.dumps(figures["ratios"]))


if __name__ == "__main__":
    main()
