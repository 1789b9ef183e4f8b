"""Record the demo job for the TUI snapshot tests: its events and job row (JSON) and its repo (a git bundle).

The snapshots must not change from run to run, so they replay this recording instead
of running a job: times are shifted to a fixed start, paths are replaced, and the bundle
keeps every commit (and so every sha) exactly. Run it again only when the orchestrator's
events change, then update the snapshots:

    python tests/tui/record_demo_job.py && python -m pytest tests/tui --snapshot-update
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from agents.models import ModelSpec
from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.demo import INSTRUCTION, SCRIPT, demo_settings, make_sample_repo
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Task

DATA = Path(__file__).parent / "data"
JOB_ID = "20260105-093000-5a1f"
START = 1767605400.0  # 2026-01-05 09:30:00 UTC
REPO_PLACEHOLDER = "{repo}"


def record(out: Path = DATA) -> None:
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer(SCRIPT) as server:
        workdir = Path(tmp)
        repo = make_sample_repo(workdir / "inventory")
        settings = demo_settings(workdir, server.base_url, "bubblewrap")
        # Priced like a small hosted model, so that the costs on screen are not all zero.
        priced = ModelSpec(base_url=server.base_url, model="scripted-demo", input_price=0.4, output_price=1.6)
        runner = Director(settings.model_copy(update={"models": {"default": priced}}))
        task = Task(instruction=INSTRUCTION, repo=str(repo), base="main")
        runner.records.jobs.create(task, job_id=JOB_ID)
        runner.records.events.emit(JOB_ID, "job.submitted", payload=task.model_dump())
        job = runner.run(JOB_ID)
        events = runner.events(JOB_ID)
        shift = START - events[0].ts
        recorded = {
            "job": {**job.model_dump(mode="json", exclude={"task"}), "created_at": START,
                    "updated_at": round(events[-1].ts + shift, 2)},
            "task": {**task.model_dump(), "repo": REPO_PLACEHOLDER},
            "events": [
                {**e.model_dump(exclude={"id"}), "ts": round(e.ts + shift, 2)} for e in events
            ],
        }
        text = json.dumps(recorded, indent=1).replace(str(repo), REPO_PLACEHOLDER)
        out.mkdir(parents=True, exist_ok=True)
        (out / "demo_job.json").write_text(text + "\n")
        subprocess.run(["git", "bundle", "create", str(out / "demo_job.bundle"), "--all"], cwd=repo, check=True,
                       capture_output=True)
        print(f"recorded {len(events)} events of job {JOB_ID} ({job.status.value}) in {out}", file=sys.stderr)


if __name__ == "__main__":
    record()
