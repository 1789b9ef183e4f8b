"""`shipyard demo`: the whole flow on a bundled sample repo, with a scripted model.

Nothing here is faked but the model: the sandboxes, git branches, tests and the HTTP
between agents and the model server are all real.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agents.models import ModelSpec
from agents.scripted_model import ScriptedModelServer
from orchestrator.config.settings import Settings, load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job, Task

DEMO_DIR = Path(__file__).parent
SAMPLE_REPO = DEMO_DIR / "sample_repo"
SCRIPT = DEMO_DIR / "script.yaml"
CAMPAIGN_REPO = DEMO_DIR / "campaign_repo"
CAMPAIGN_SCRIPT = DEMO_DIR / "campaign_script.yaml"
CAMPAIGN_GOAL = "Make every unit conversion right."
CAMPAIGN_VERIFIER = "python3 verify.py"
INSTRUCTION = (
    "The total value ignores quantities and its test fails: fix it. Then add discount(total, percent), "
    "which refuses percentages outside 0-100, and stock_report(items), which lists each item's stock "
    "value and the total; both with tests."
)


@dataclass
class DemoRun:
    repo: Path
    job: Job
    runner: Director
    server: ScriptedModelServer


def make_sample_repo(path: Path, source: Path = SAMPLE_REPO) -> Path:
    """A fresh git repo with the sample project (or `source`) committed on `main`."""
    shutil.copytree(source, path, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    env = {"GIT_AUTHOR_NAME": "Demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
           "GIT_COMMITTER_NAME": "Demo", "GIT_COMMITTER_EMAIL": "demo@example.invalid", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Sample inventory project"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return path


def demo_settings(workdir: Path, base_url: str, backend: str | None = None) -> Settings:
    """The user's settings (sandbox choice, limits) with the scripted model for every role
    and a state dir of its own, so that the demo leaves the user's job list alone."""
    settings = load_settings(workdir)
    sandbox = settings.sandbox.model_copy(update={"backend": backend} if backend else {})
    return settings.model_copy(
        update={
            "state_dir": workdir / "state",
            "models": {"default": ModelSpec(base_url=base_url, model="scripted-demo")},
            "sandbox": sandbox,
        }
    )


def run_demo(workdir: Path, backend: str | None = None) -> DemoRun:
    """Run the demo job in `workdir` (which must not exist yet) and return it finished."""
    repo = make_sample_repo(workdir / "inventory")
    server = ScriptedModelServer(SCRIPT).start()
    try:
        runner = Director(demo_settings(workdir, server.base_url, backend))
        job = runner.submit(Task(instruction=INSTRUCTION, repo=str(repo), base="main"))
        job = runner.run(job.id)
    finally:
        server.stop()
    return DemoRun(repo=repo, job=job, runner=runner, server=server)
