"""The orchestrator's own cost, against the scripted model server.

1. Overhead per agent step: one coder making N tool calls inside a full job (agent loop,
   langchain client, event log, sandbox file tools) next to a plain openai-SDK tool loop
   making the same calls against the same server, with zero model latency.
2. Fan-out efficiency: 8 (goal: efficiency >= 0.9) and 16 independent subtasks with a fixed
   model latency; the job's wall time against its critical path (planner, one coder, one
   reviewer in a row). The model is served by a process of its own, as a real one is.

    python -m bench.orchestrator_bench [--steps N] [--latency S] [--backend NAME]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

from agents.scripted_model import ScriptedModelServer
from agents.tools import TOOLS
from bench.common import served_apart, write_results
from orchestrator.apps.demo import demo_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Task
from tests.helpers import approve, call, coder, make_repo, plan_entry, subtask

EFFICIENCY_GOAL = 0.9


def _job(workdir: Path, script: list[dict[str, Any]], backend: str, apart: bool = False) -> tuple[Director, str, float]:
    """The bench's job, against the scripted model in this process or (`apart`) in one of its own."""
    repo = make_repo(workdir / "repo", {"notes.txt": "one\ntwo\nthree\n"})
    with served_apart(script) if apart else _served_here(script) as base_url:
        runner = Director(demo_settings(workdir, base_url, backend))
        job = runner.submit(Task(instruction="bench", repo=str(repo)))
        started = time.perf_counter()
        job = runner.run(job.id)
        wall = time.perf_counter() - started
    assert job.status.delivered, job.error  # unverified: the bench's repo has no tests
    return runner, job.id, wall


@contextmanager
def _served_here(script: list[dict[str, Any]]) -> Iterator[str]:
    with ScriptedModelServer(script) as server:
        yield server.base_url


def step_overhead(steps: int, backend: str) -> dict[str, float]:
    view = call("view_file", path="notes.txt")
    script = [plan_entry(subtask("s1", "read"))]
    script += [coder("s1", view) for _ in range(steps)]
    script += [coder("s1", call("create_file", path="READ.md", content="read\n"), call("submit", summary="read it")),
               approve("s1")]
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        runner, job_id, _ = _job(Path(tmp), script, backend)
        finished = next(e for e in runner.events(job_id) if e.kind == "agent.finished" and e.role == "coder")
        shipyard = finished.payload["seconds"] / finished.payload["steps"]
    plain = _plain_loop(steps)
    return {"steps": steps, "shipyard_s_per_step": shipyard, "plain_sdk_s_per_step": plain,
            "ratio": shipyard / plain}


def _plain_loop(steps: int) -> float:
    """What a minimal agent does: openai SDK, tool schema, read the file, append messages."""
    script = [{"tool_calls": [call("view_file", path="notes.txt")]} for _ in range(steps)]
    script.append({"tool_calls": [call("submit", summary="done")]})
    schemas = [TOOLS["view_file"].schema(), TOOLS["submit"].schema()]
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer(script) as server:
        notes = Path(tmp) / "notes.txt"
        notes.write_text("one\ntwo\nthree\n")
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
        messages: list[dict[str, Any]] = [{"role": "system", "content": "bench"}, {"role": "user", "content": "go"}]
        started = time.perf_counter()
        for _step in range(steps + 1):
            reply = client.chat.completions.create(model="plain", messages=messages, tools=schemas)  # type: ignore[arg-type]
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            for tool_call in message.tool_calls or []:
                json.loads(tool_call.function.arguments)
                text = "\n".join(f"{n:6}\t{line}" for n, line in enumerate(notes.read_text().splitlines(), 1))
                messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": text})
        return (time.perf_counter() - started) / (steps + 1)


def fan_out(subtasks: int, latency: float, backend: str) -> dict[str, float]:
    ids = [f"s{i:02}" for i in range(1, subtasks + 1)]  # "s1" would match s10's requests too
    script: list[dict[str, Any]] = [plan_entry(*(subtask(i, f"write {i}") for i in ids))]
    for i in ids:
        script.append(coder(i, call("create_file", path=f"{i}.txt", content=i), call("submit", summary=i)))
        script.append(approve(i))
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        _, _, wall = _job(Path(tmp), [{**entry, "latency": latency} for entry in script], backend, apart=True)
    critical_path = 3 * latency  # planner, then one coder and one reviewer in a row
    serial = (1 + 2 * subtasks) * latency
    return {"subtasks": subtasks, "latency_s": latency, "wall_s": wall, "critical_path_s": critical_path,
            "serial_model_time_s": serial, "efficiency": critical_path / wall, "speedup_vs_serial": serial / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--backend", default="bubblewrap")
    args = parser.parse_args()
    steps = step_overhead(args.steps, args.backend)
    print(f"per agent step: shipyard {steps['shipyard_s_per_step'] * 1000:.1f} ms, plain openai-SDK loop "
          f"{steps['plain_sdk_s_per_step'] * 1000:.1f} ms, ratio {steps['ratio']:.2f}")
    fans = {}
    for width in (8, 16):
        fan = fans[width] = fan_out(width, args.latency, args.backend)
        goal = f" (goal >= {EFFICIENCY_GOAL})" if width == 8 else ""
        print(f"fan-out of {width} subtasks at {args.latency:g} s per model call: wall {fan['wall_s']:.1f} s, "
              f"critical path {fan['critical_path_s']:.1f} s, efficiency {fan['efficiency']:.2f}{goal}, "
              f"speed-up vs serial {fan['speedup_vs_serial']:.1f}x")
    figures = {"backend": args.backend, "step_overhead": steps, "fan_out": fans[8], "fan_out_16": fans[16]}
    print(f"wrote {write_results('orchestrator_bench', figures)}")


if __name__ == "__main__":
    main()
