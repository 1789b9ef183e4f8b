"""The job commands on a finished job, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git

from orchestrator.apps.demo import run_demo

pytestmark = pytest.mark.bubblewrap


def test_show_logs_export_diff_and_accept(tmp_path: Path, sandbox_backend: str) -> None:
    demo = run_demo(tmp_path / "demo", backend=sandbox_backend)
    job_id = demo.job.id
    env = {**os.environ, "SHIPYARD_STATE_DIR": str(tmp_path / "demo" / "state"), "COLUMNS": "200"}

    def shipyard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, input=stdin, timeout=120)

    jobs = shipyard("jobs")
    assert jobs.returncode == 0 and job_id in jobs.stdout and "succeeded" in jobs.stdout
    show = shipyard("show", job_id[:-2])  # a unique prefix is enough
    assert show.returncode == 0 and "Count quantities in total_value" in show.stdout
    logs = shipyard("logs", job_id)
    assert "review.verdict" in logs.stdout and "s2.test_fixer.1" in logs.stdout
    follow = shipyard("logs", job_id, "--follow")  # a finished job: prints everything and ends
    assert follow.returncode == 0 and "job.finished" in follow.stdout
    exported = tmp_path / "trajectory.jsonl"
    assert shipyard("export", job_id, "-o", str(exported)).returncode == 0
    events = [json.loads(line) for line in exported.read_text().splitlines()]
    assert events[0]["kind"] == "job.submitted" and events[-1]["kind"] == "job.finished"
    assert {"agent.tool_result", "test.result", "merge"} <= {e["kind"] for e in events}
    diff = shipyard("diff", job_id)
    assert "def discount(total, percent):" in diff.stdout

    refused = shipyard("accept", job_id, stdin="n\n")
    assert refused.returncode != 0 and git(demo.repo, "log", "--merges", "--oneline", "main") == ""
    accepted = shipyard("accept", job_id, "--yes")
    assert accepted.returncode == 0, accepted.stderr
    assert f"Merge shipyard/{job_id}" in git(demo.repo, "log", "-1", "--format=%s", "main")
    assert (demo.repo / "inventory" / "pricing.py").exists()  # the checkout on main has the work
