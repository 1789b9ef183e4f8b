"""Helpers for the TUI tests: real jobs on the demo repo, a launcher that runs them in threads,
the recorded demo job for snapshots, and ways to wait on a running app."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static, Tree

from agents.scripted_model import Script, ScriptedModelServer
from orchestrator.apps.demo import INSTRUCTION, demo_settings
from orchestrator.config.settings import Settings
from orchestrator.runtime.director import Director
from orchestrator.store.events import (
    AgentToolResult,
    CampaignChosen,
    CampaignDigest,
    CampaignMeasured,
    CampaignOptions,
    Event,
    JobStatusChanged,
    from_row,
)
from orchestrator.store.jobs import Campaign, Job, JobStatus, Task
from tui.app import ShipyardApp
from tui.widgets.plan_tree import PlanTree

DATA = Path(__file__).parent / "data"
RECORDED_JOB = "20260105-093000-5a1f"
# The snapshots' "now": an hour after the recorded job started.
RECORDED_NOW = 1767605400.0 + 3600
RECORDED_CAMPAIGN = "20260105-091500-c4a9"
# The recorded campaign's figure (failing tests) at the start and after each iteration, and what it tried.
CAMPAIGN_FIGURES = [7.0, 4.0, 2.0, 1.0]
# A long command output in the recorded job's log: 240 lines, the verdict on the last.
LONG_OUTPUT = "\n".join([*(f"tests/test_pricing.py::test_case_{i:03d} PASSED" for i in range(239)),
                         "FAILED tests/test_pricing.py::test_discount_rounds - assert 9.99 == 10.0"])
CAMPAIGN_OPTIONS = [["Fix the arithmetic of totals", "Rewrite pricing from scratch"],
                    ["Add the missing discount rules"], ["Make the stock report sort by name"]]


class ThreadLauncher:
    """Runs a job's work in a thread, with a runner of its own, as `shipyard work` would in its own process."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def __call__(self, settings: Settings, job_id: str, action: str = "run", repo: Path | None = None,
                 subtasks: list[str] | None = None) -> None:
        self.calls.append((job_id, action))

        def work() -> None:
            runner = Director(settings)
            try:
                if action == "answer":
                    runner.answer(job_id)
                elif action == "retry":
                    runner.retry(job_id, subtasks)
                else:
                    runner.run(job_id)
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                self.errors.append(exc)

        thread = threading.Thread(target=work, name=f"job-{job_id}-{action}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self, timeout: float = 60) -> None:
        for thread in self._threads:
            thread.join(timeout)


@dataclass
class Demo:
    """The demo's sample repo and scripted model, with settings and a runner on a state dir of their own."""

    repo: Path
    settings: Settings
    server: ScriptedModelServer
    runner: Director
    launcher: ThreadLauncher = field(default_factory=ThreadLauncher)

    def app(self, **kwargs: Any) -> ShipyardApp:
        kwargs.setdefault("launcher", self.launcher)
        return ShipyardApp(self.settings, self.repo, poll_interval=0.1, **kwargs)

    def submit(self, approve_plan: bool = False) -> Job:
        """A job submitted as the CLI would, outside the app."""
        return self.runner.submit(Task(instruction=INSTRUCTION, repo=str(self.repo), approve_plan=approve_plan))

    def start(self, approve_plan: bool = False) -> Job:
        """Submit a job and run it in the background."""
        job = self.submit(approve_plan)
        self.launcher(self.settings, job.id)
        return job

    def status(self, job_id: str) -> JobStatus:
        return self.runner.get(job_id).status

    def kinds(self, job_id: str) -> list[str]:
        return [event.kind for event in self.runner.events(job_id)]


MakeDemo = Callable[..., Demo]


def slowed(script: Path, latency: float) -> Script:
    """The script with every answer delayed, so that a test can see (and act on) each state."""
    return Script.load(script).model_copy(update={"latency": latency})


async def wait_until(pilot: Pilot[Any], predicate: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*({" ": "space"}.get(char, char) for char in text))


async def select_node(pilot: Pilot[Any], scope: str) -> None:
    """Move the cursor of the screen's plan tree to the node for a scope ("subtask:s2", ...) with the arrow keys."""
    tree = pilot.app.screen.query_one(PlanTree)
    tree.focus()
    await pilot.press("home")
    for _ in range(40):
        if tree.cursor_node is not None and tree.cursor_node.data == scope:
            return
        await pilot.press("down")
    raise AssertionError(f"no {scope} in the tree")


def node_label(tree: Tree[str], scope: str) -> str:
    """The plain label of the tree node for a scope ("subtask:s2", ...); "" while there is none."""
    stack = [tree.root]
    while stack:
        node = stack.pop()
        if node.data == scope:
            return str(node.label)
        stack.extend(node.children)
    return ""


def static_text(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def load_recorded_job(workdir: Path) -> tuple[Settings, Path]:
    """A state dir and repo holding the recorded demo job (see record_demo_job.py), plus jobs in other states."""
    repo = workdir / "inventory"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "recorded")
    git(repo, "fetch", "-q", str(DATA / "demo_job.bundle"), "+refs/heads/*:refs/heads/*")
    git(repo, "checkout", "-q", "main")
    recorded = json.loads((DATA / "demo_job.json").read_text().replace("{repo}", str(repo)))
    settings = demo_settings(workdir, "http://127.0.0.1:9/v1", "local")
    runner = Director(settings)
    events = [from_row(e) for e in recorded["events"]]
    fixer = events[75]  # the test fixer's test run, then once more with every test
    events.insert(76, AgentToolResult(job_id=fixer.job_id, ts=fixer.ts, subtask="s2", role="test_fixer",
                                      agent="s2.test_fixer.1", step=3, tool="run_command", ok=False,
                                      arguments={"command": "python3 -m pytest -v"}, output=LONG_OUTPUT))
    task = Task.model_validate(recorded["task"])
    job = recorded["job"]
    _add_job(runner, job["id"], task, JobStatus(job["status"]), events, job["created_at"], job["updated_at"],
             report=job["report"])
    # The same story cut short, for a jobs list with every kind of state in it.
    waiting = next(i for i, e in enumerate(events) if e.kind == "plan.ready") + 1
    running = next(i for i, e in enumerate(events) if e.kind == "merge") + 6
    others = [
        ("20260105-101500-7c2e", "Add a CSV export of the stock report, with a header row.", JobStatus.RUNNING,
         events[:running], 1800),
        ("20260105-102000-91b0", "Make discount() accept a Decimal as well as a float.",
         JobStatus.AWAITING_APPROVAL, events[:waiting], 2100),
        ("20260105-094500-3d4a", "Port the inventory package to Rust.", JobStatus.FAILED, events[:3], 900),
    ]
    add_recorded_campaign(runner, task, events, job["created_at"] - 900)
    for job_id, instruction, status, prefix, offset in others:
        error = "ModelError: the planner's endpoint refused the request (429)" if status.finished else None
        _add_job(runner, job_id, task.model_copy(update={"instruction": instruction}), status,
                 [e.model_copy(update={"job_id": job_id, "ts": e.ts + offset}) for e in prefix],
                 job["created_at"] + offset, job["created_at"] + offset + 60, error=error)
    return settings, repo


def add_recorded_campaign(runner: Director, task: Task, events: list[Event], created: float) -> None:
    """A campaign three iterations in (7 → 4 → 2 → 1 failing tests), its fourth iteration's job running."""
    campaign = task.model_copy(update={
        "instruction": "Make every test of the inventory package pass.",
        "campaign": Campaign(verifier="python3 -m pytest -q", figure="lower", budget=1.5, options=2)})
    running = next(i for i, e in enumerate(events) if e.kind == "merge") + 6
    story: list[Event] = [JobStatusChanged(job_id=RECORDED_CAMPAIGN, status="running", ts=created + 1),
                          CampaignMeasured(job_id=RECORDED_CAMPAIGN, iteration=0, sha="a" * 40, passed=False,
                                           figure=CAMPAIGN_FIGURES[0], ts=created + 2)]
    spent = 0.0
    for number, titles in enumerate([*CAMPAIGN_OPTIONS, ["Fix the last failing test"]], start=1):
        start = created + number * 600
        jobs = [f"20260105-{9 + (15 + number * 10) // 60:02d}{(15 + number * 10) % 60:02d}{k}0-{number}{k}e0"
                for k in range(len(titles))]
        story.append(CampaignOptions(job_id=RECORDED_CAMPAIGN, iteration=number, jobs=jobs, ts=start,
                                     options=[{"title": t, "cost": 0.2, "risk": 0.3} for t in titles]))
        last = number == len(CAMPAIGN_OPTIONS) + 1
        for k, job_id in enumerate(jobs):
            status = JobStatus.RUNNING if last else JobStatus.SUCCEEDED if k == 0 else JobStatus.FAILED
            prefix = events[:running] if last else events
            _add_job(runner, job_id, campaign.model_copy(update={"campaign": None, "parent": RECORDED_CAMPAIGN,
                                                                 "instruction": titles[k]}),
                     status, [e.model_copy(update={"job_id": job_id, "ts": e.ts - events[0].ts + start})
                              for e in prefix], start, start + 300)
            spent += sum(e.cost for e in prefix)
        if last:
            break
        before, now = CAMPAIGN_FIGURES[number - 1], CAMPAIGN_FIGURES[number]
        story += [
            CampaignChosen(job_id=RECORDED_CAMPAIGN, iteration=number, winner=jobs[0], ts=start + 400),
            CampaignMeasured(job_id=RECORDED_CAMPAIGN, iteration=number, sha=f"{number}" * 40, passed=False,
                             figure=now, ts=start + 410),
            CampaignDigest(job_id=RECORDED_CAMPAIGN, iteration=number, figure_before=before, figure_now=now,
                           spent=round(spent, 4), ts=start + 420,
                           text=f"iteration {number}: {before:g} → {now:g} failing; merged {titles[0]!r}"),
        ]
    _add_job(runner, RECORDED_CAMPAIGN, campaign, JobStatus.RUNNING, story, created, created + 3000)


def _add_job(runner: Director, job_id: str, task: Task, status: JobStatus, events: list[Event], created: float,
             updated: float, **fields: Any) -> None:
    runner.records.jobs.create(task, job_id=job_id)
    runner.records.jobs.update(job_id, status, created_at=created, updated_at=updated, **fields)
    for event in events:
        runner.records.events.append(event.model_copy(update={"job_id": job_id}))
