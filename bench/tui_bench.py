"""How well the TUI follows a busy job.

A job of 8 subtasks whose agents emit events as fast as the store takes them (a writer
thread appending to the event log, as a job's process would) while the TUI, headless,
follows it on the job screen. Printed, as measured in this one run:

- events per second the TUI took in and rendered, while the job ran and when catching up
  with the whole finished job at once;
- the process's memory at every 25,000 events and after 100,000 (the logs keep a bounded window);
- how long a key press waited for the screen to react while events poured in;
- the CPU the TUI takes while idle on the jobs list with 200 jobs (finished and running, their
  events in the store), as a ratio to a bare Textual app showing a table of the same size;
- the time from launching `shipyard tui`'s process to its first screen, as a ratio to a bare
  Textual app's process, and how much of it is importing the orchestrator (its settings).

    python -m bench.tui_bench [--events 100000] [--idle-jobs 200] [--idle-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer, Header

from agents.plan import Plan
from agents.usage import UsageTotals
from bench.common import write_results
from orchestrator.config.settings import Settings, load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.events import (
    AgentFinished,
    AgentMessage,
    AgentToolResult,
    Event,
    PlanReady,
    ReviewGiven,
    SubtaskStatus,
    TestResult,
)
from orchestrator.store.jobs import JobStatus, Task
from tui.app import ShipyardApp
from tui.screens.job import JobScreen
from tui.widgets.plan_tree import PlanTree

JOB_ID = "20260105-120000-be7c"
SUBTASKS = [f"s{i}" for i in range(1, 9)]
STEPS_PER_AGENT = 40  # then the agent finishes, its subtask is tested and reviewed, and a new agent starts
OUTPUT = "\n".join(f"tests/test_module_{i}.py::test_case_{i} PASSED" for i in range(12))


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def job_events(total: int) -> Iterator[Event]:
    """A plausible stream: a plan, then agents of all 8 subtasks taking steps in turn."""
    plan = {"summary": "Eight independent changes.", "subtasks": [
        {"id": s, "title": f"Change number {s[1:]}", "instructions": "Do it.", "depends_on": []} for s in SUBTASKS]}
    yield PlanReady(job_id=JOB_ID, role="planner", plan=Plan.model_validate(plan))
    count, rounds = 1, 0
    while True:
        rounds += 1
        for sub in SUBTASKS:
            yield SubtaskStatus(job_id=JOB_ID, subtask=sub, status="coding")
            count += 1
        for step in range(1, STEPS_PER_AGENT + 1):
            for sub in SUBTASKS:
                agent = f"{sub}.coder.{rounds}"
                yield AgentMessage(job_id=JOB_ID, subtask=sub, role="coder", agent=agent, step=step,
                                   content=f"Step {step}: running the tests of {sub}.",
                                   tool_calls=[{"name": "run_command", "args": {"command": "pytest -q"}}],
                                   tokens=1_050, cost=0.0005)
                yield AgentToolResult(job_id=JOB_ID, subtask=sub, role="coder", agent=agent, step=step,
                                      tool="run_command", arguments={"command": "pytest -q"}, ok=True, output=OUTPUT)
                count += 2
                if count >= total:
                    return
        for sub in SUBTASKS:
            usage = UsageTotals(calls=STEPS_PER_AGENT, input_tokens=40_000, output_tokens=2_000, cost=0.02)
            yield AgentFinished(job_id=JOB_ID, subtask=sub, role="coder", agent=f"{sub}.coder.{rounds}",
                                status="submitted", reason="submitted", steps=STEPS_PER_AGENT, seconds=30.0,
                                usage=usage)
            yield TestResult(job_id=JOB_ID, subtask=sub, agent=sub, passed=True, exit_code=0, output=OUTPUT,
                             command="pytest -q")
            yield ReviewGiven(job_id=JOB_ID, subtask=sub, role="reviewer", agent=f"{sub}.reviewer.{rounds}",
                              decision="request_changes", summary="One more pass.")
            count += 3


def write(runner: Director, total: int) -> None:
    for event in job_events(total):
        runner.records.events.append(event)
    runner.records.jobs.update(JOB_ID, JobStatus.SUCCEEDED)


async def open_job(pilot: Pilot[Any]) -> JobScreen:
    await pilot.press("enter")  # the job, from the jobs list
    while not isinstance(pilot.app.screen, JobScreen):
        await asyncio.sleep(0.01)
    return pilot.app.screen


async def follow_live(pilot: Pilot[Any], settings: Settings, total: int) -> dict[str, Any]:
    """The job screen following the job while a thread writes its events; keys pressed meanwhile."""
    screen = await open_job(pilot)
    tree = screen.query_one(PlanTree)
    writer = threading.Thread(target=write, args=(Director(settings), total), daemon=True)
    started = time.perf_counter()
    writer.start()
    while not tree.root.children:  # the plan is in: the cursor has somewhere to go
        await asyncio.sleep(0.01)
    latencies: list[float] = []
    memory: dict[int, float] = {}
    marks = list(range(25_000, total + 1, 25_000))
    key = "down"
    while screen.ingested < total:
        before = tree.cursor_line
        pressed = time.perf_counter()
        pilot.app.simulate_key(key)  # as the terminal driver delivers a key: a message to the app
        while tree.cursor_line == before and time.perf_counter() - pressed < 5:
            await asyncio.sleep(0.001)
        latencies.append(time.perf_counter() - pressed)
        key = "up" if key == "down" else "down"
        while marks and screen.ingested >= marks[0]:
            memory[marks.pop(0)] = rss_mb()
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - started
    writer.join()
    memory.setdefault(total, rss_mb())
    latencies.sort()
    return {
        "live_events_per_second": round(total / seconds), "live_seconds": round(seconds, 1),
        "rss_mb_at": {n: round(mb, 1) for n, mb in memory.items()},
        "key_presses": len(latencies), "key_latency_ms_median": round(statistics.median(latencies) * 1000, 1),
        "key_latency_ms_p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "key_latency_ms_max": round(latencies[-1] * 1000, 1),
    }


async def catch_up(pilot: Pilot[Any], total: int) -> dict[str, Any]:
    """A fresh job screen on the finished job, taking in all of it at once."""
    await pilot.press("escape")
    await pilot.pause(0.5)
    started = time.perf_counter()
    screen = await open_job(pilot)
    while screen.ingested < total:
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    return {"catch_up_events_per_second": round(total / seconds), "catch_up_seconds": round(seconds, 1)}


class BareApp(App[None]):
    """The baseline: a Textual app with a table of as many rows, and nothing to follow."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("job", "status", "done", "age", "cost", "task")
        for n in range(self.rows):
            table.add_row(f"{n:04x}", "✓ succeeded", "3/3", "1h", "$0.0121", f"Task number {n}")


def many_jobs(settings: Settings, count: int) -> None:
    """`count` jobs, a quarter of them running, each with a plan and 60 events."""
    runner = Director(settings)
    events = list(job_events(60))
    for n in range(count):
        job_id = f"20260105-{n // 60:02d}{n % 60:02d}00-{n:04x}"
        runner.records.jobs.create(Task(instruction=f"Change number {n}", repo=str(settings.state_dir)),
                                   job_id=job_id)
        runner.records.jobs.update(job_id, JobStatus.RUNNING if n % 4 == 0 else JobStatus.SUCCEEDED)
        for event in events:
            runner.records.events.append(event.model_copy(update={"job_id": job_id}))


async def idle_cpu(app: App[None], seconds: float, ready: Any) -> float:
    """The share of one core the process used while the app sat idle for `seconds`."""
    async with app.run_test(size=(120, 36)) as pilot:
        while not ready(pilot):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # settled
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)


def idle(jobs: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp)).model_copy(update={"state_dir": Path(tmp) / "state"})
        many_jobs(settings, jobs)
        shipyard = ShipyardApp(settings, Path(tmp), launcher=lambda *a, **k: None)
        ours = asyncio.run(idle_cpu(shipyard, seconds,
                                    lambda p: p.app.screen.query_one(DataTable).row_count == jobs))
    bare = asyncio.run(idle_cpu(BareApp(jobs), seconds, lambda p: p.app.query_one(DataTable).row_count == jobs))
    return {"idle_jobs": jobs, "idle_cpu_percent": round(ours * 100, 2), "bare_idle_cpu_percent": round(bare * 100, 2)}


# Each prints the seconds from its own start to the app's first screen, then exits.
STARTUP = {
    "shipyard": """
import time, sys; started = float(sys.argv[1])
from pathlib import Path
from orchestrator.config.settings import load_settings
settings_at = time.time()
from tui.app import ShipyardApp
app = ShipyardApp(load_settings(Path(sys.argv[2])), Path(sys.argv[2]), launcher=lambda *a, **k: None)
async def first(pilot):
    await pilot.pause()
    print(time.time() - started, settings_at - started)
    pilot.app.exit()
app.run(headless=True, auto_pilot=first)
""",
    "bare": """
import time, sys; started = float(sys.argv[1])
from textual.app import App
from textual.widgets import DataTable, Footer, Header
class Bare(App):
    def compose(self):
        yield Header(); yield DataTable(); yield Footer()
async def first(pilot):
    await pilot.pause()
    print(time.time() - started, 0.0)
    pilot.app.exit()
Bare().run(headless=True, auto_pilot=first)
""",
}


def startup(runs: int = 3) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in STARTUP.items():
            first, settings = [], []
            for _ in range(runs):
                out = subprocess.run([sys.executable, "-c", code, str(time.time()), tmp], check=True,
                                     capture_output=True, text=True).stdout.split()
                first.append(float(out[0]))
                settings.append(float(out[1]))
            figures[f"{name}_startup_s"] = round(statistics.median(first), 2)
            if name == "shipyard":
                figures["orchestrator_settings_import_s"] = round(statistics.median(settings), 2)
    return figures


async def main(total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp)).model_copy(update={"state_dir": Path(tmp) / "state"})
        runner = Director(settings)
        runner.records.jobs.create(Task(instruction="Eight changes at once", repo=tmp), job_id=JOB_ID)
        runner.records.jobs.update(JOB_ID, JobStatus.RUNNING)
        app = ShipyardApp(settings, Path(tmp), launcher=lambda *a, **k: None, poll_interval=0.1)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause(0.3)
            figures: dict[str, Any] = {"events": total, "subtasks": len(SUBTASKS), "rss_mb_idle": round(rss_mb(), 1)}
            figures |= await follow_live(pilot, settings, total)
            figures |= await catch_up(pilot, total)
    memory = figures["rss_mb_at"]
    first, last = min(memory), max(memory)
    print(f"{total:,} events from {len(SUBTASKS)} subtasks, appended by a writer thread (EventLog.append)")
    print(f"live:     {figures['live_events_per_second']:,} events/s taken in and rendered as they were written "
          f"({figures['live_seconds']} s; the writer sets this pace)")
    print(f"catch-up: {figures['catch_up_events_per_second']:,} events/s taken in and rendered, opening the "
          f"finished job ({figures['catch_up_seconds']} s): "
          f"{figures['catch_up_events_per_second'] / figures['live_events_per_second']:.1f}x the writer's pace")
    print(f"memory:   {figures['rss_mb_idle']} MB idle; " + ", ".join(f"{mb} MB at {n:,}" for n, mb in memory.items())
          + f" events: {memory[last] / memory[first]:.2f}x from {first:,} to {last:,} (process RSS)")
    print(f"keys:     {figures['key_presses']} presses while ingesting, key to cursor moved: median "
          f"{figures['key_latency_ms_median']} ms, p95 {figures['key_latency_ms_p95']} ms, "
          f"max {figures['key_latency_ms_max']} ms")
    print(f"results:  {write_results('tui_bench', figures)}")


def cost(jobs: int, seconds: float) -> None:
    figures = idle(jobs, seconds) | startup()
    ours, bare = figures["idle_cpu_percent"], figures["bare_idle_cpu_percent"]
    # A bare app idles at about nothing: the ratio only means something above a tenth of a per cent.
    ratio = f"{ours / bare:.1f}x" if bare >= 0.1 else f"+{ours - bare:.2f} points"
    print(f"idle:     {ours}% of a core on the jobs list with {jobs} jobs, against {bare}% for a bare Textual app "
          f"with a table of {jobs} rows: {ratio}")
    print(f"start-up: {figures['shipyard_startup_s']} s from process start to the first screen, against "
          f"{figures['bare_startup_s']} s for a bare Textual app: "
          f"{figures['shipyard_startup_s'] / figures['bare_startup_s']:.1f}x; "
          f"{figures['orchestrator_settings_import_s']} s of it importing orchestrator.config.settings")
    print(f"results:  {write_results('tui_bench_cost', figures)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--idle-jobs", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--only-cost", action="store_true", help="only the idle CPU and the start-up time")
    args = parser.parse_args()
    cost(args.idle_jobs, args.idle_seconds)
    if not args.only_cost:
        asyncio.run(main(args.events))
