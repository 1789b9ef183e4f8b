"""How well the TUI follows a busy job.

A job of 8 subtasks whose agents emit events as fast as the store takes them (a writer
thread appending to the event log, as a job's process would) while the TUI, headless,
follows it on the job screen. Printed, as measured in this one run:

- events per second the TUI took in and rendered, while the job ran and when catching up
  with the whole finished job at once;
- the process's memory at every 25,000 events and after 100,000 (the logs keep a bounded window);
- how long a key press waited for the screen to react while events poured in.

    python -m bench.tui_bench [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from orchestrator.config import load_settings
from orchestrator.events import Event
from orchestrator.jobs import JobStatus, Task
from orchestrator.runner import JobRunner
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
    yield Event(job_id=JOB_ID, kind="plan.ready", role="planner", payload={"plan": plan})
    count, rounds = 1, 0
    while True:
        rounds += 1
        for sub in SUBTASKS:
            yield Event(job_id=JOB_ID, kind="subtask.status", subtask=sub, payload={"status": "coding"})
            count += 1
        for step in range(1, STEPS_PER_AGENT + 1):
            for sub in SUBTASKS:
                agent = f"{sub}.coder.{rounds}"
                yield Event(job_id=JOB_ID, kind="agent.message", subtask=sub, role="coder", agent=agent,
                            payload={"step": step, "content": f"Step {step}: running the tests of {sub}.",
                                     "tool_calls": [{"name": "run_command", "args": {"command": "pytest -q"}}]})
                yield Event(job_id=JOB_ID, kind="agent.tool_result", subtask=sub, role="coder", agent=agent,
                            payload={"step": step, "tool": "run_command", "arguments": {"command": "pytest -q"},
                                     "ok": True, "output": OUTPUT})
                count += 2
                if count >= total:
                    return
        for sub in SUBTASKS:
            usage = {"input_tokens": 40_000, "output_tokens": 2_000, "cost": 0.02}
            yield Event(job_id=JOB_ID, kind="agent.finished", subtask=sub, role="coder", agent=f"{sub}.coder.{rounds}",
                        payload={"status": "submitted", "reason": "submitted", "steps": STEPS_PER_AGENT,
                                 "seconds": 30.0, "usage": usage}, tokens=42_000, cost=0.02)
            yield Event(job_id=JOB_ID, kind="test.result", subtask=sub, agent=sub,
                        payload={"passed": True, "exit_code": 0, "output": OUTPUT, "command": "pytest -q"})
            yield Event(job_id=JOB_ID, kind="review.verdict", subtask=sub, role="reviewer",
                        agent=f"{sub}.reviewer.{rounds}", payload={"decision": "request_changes",
                                                                   "summary": "One more pass.", "comments": []})
            count += 3


def write(runner: JobRunner, total: int, done: threading.Event) -> None:
    for event in job_events(total):
        runner.events.append(event)
    runner.jobs.update(JOB_ID, JobStatus.SUCCEEDED)
    done.set()


async def follow(pilot: Pilot[Any], runner: JobRunner, total: int) -> None:
    app = pilot.app
    await pilot.press("enter")  # open the job from the list
    while not isinstance(app.screen, JobScreen):
        await asyncio.sleep(0.01)
    screen = app.screen
    tree = screen.query_one(PlanTree)

    done = threading.Event()
    writer = threading.Thread(target=write, args=(JobRunner(runner.settings), total, done), daemon=True)
    started = time.perf_counter()
    writer.start()
    while not tree.root.children:  # the plan is in: the cursor has somewhere to go
        await asyncio.sleep(0.01)
    latencies: list[float] = []
    marks = iter(range(25_000, total + 1, 25_000))
    mark = next(marks, None)
    memory: list[tuple[int, float]] = []
    key = "down"
    while screen.ingested < total:
        before = tree.cursor_line
        pressed = time.perf_counter()
        await pilot.press(key)
        while tree.cursor_line == before and time.perf_counter() - pressed < 5:
            await asyncio.sleep(0.001)
        latencies.append(time.perf_counter() - pressed)
        key = "up" if key == "down" else "down"
        while mark is not None and screen.ingested >= mark:
            memory.append((mark, rss_mb()))
            mark = next(marks, None)
        await asyncio.sleep(0.2)
    live_seconds = time.perf_counter() - started
    writer.join()
    if not memory or memory[-1][0] != total:
        memory.append((total, rss_mb()))

    # Catching up: a fresh job screen on the finished job takes in all of it at once.
    await pilot.press("escape")
    await pilot.pause(0.5)
    caught_up_start = time.perf_counter()
    await pilot.press("enter")
    while not isinstance(app.screen, JobScreen):
        await asyncio.sleep(0.01)
    while app.screen.ingested < total:
        await asyncio.sleep(0.01)
    catch_up_seconds = time.perf_counter() - caught_up_start

    latencies.sort()
    print(f"events: {total:,} from {len(SUBTASKS)} subtasks, written by a thread with EventLog.append")
    print(f"live:     {total / live_seconds:,.0f} events/s taken in and rendered while the job ran "
          f"({live_seconds:.1f} s; the writer is the bottleneck here)")
    print(f"catch-up: {total / catch_up_seconds:,.0f} events/s taken in and rendered when opening the "
          f"finished job ({catch_up_seconds:.1f} s)")
    print("memory:   " + ", ".join(f"{n:,} events {mb:.0f} MB" for n, mb in memory) + " (RSS of the whole process)")
    print(f"keys:     {len(latencies)} presses while ingesting: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
          "from key press to the tree's cursor moving")


async def main(total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp)).model_copy(update={"state_dir": Path(tmp) / "state"})
        runner = JobRunner(settings)
        runner.jobs.create(Task(instruction="Eight changes at once", repo=tmp), job_id=JOB_ID)
        runner.jobs.update(JOB_ID, JobStatus.RUNNING)
        app = ShipyardApp(settings, Path(tmp), launcher=lambda *a, **k: None, poll_interval=0.1)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause(0.3)
            print(f"memory with the app open and no events: {rss_mb():.0f} MB")
            await follow(pilot, runner, total)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().events))
