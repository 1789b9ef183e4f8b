"""Context management: the tokens one long agent run sends, with and without it.

A coder reads N large files (20,000 characters each, about 7,000 tokens) one a step, saying a
few sentences with each call as models do, then submits, against the scripted model over HTTP.
Without context management every request carries the whole history, and a real endpoint would
refuse it once past its window; with a ContextWindow, old observations are elided and the
history condensed, so every request stays inside the window. Tokens are counted by the server
(agents.tokens) for every request it got, summary requests included.

    python -m bench.context_bench [--steps N] [--window TOKENS] [--chars N] [--note N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from agents.context import ContextWindow
from agents.loop import AgentLimits, run_agent
from agents.models import ModelClient, ModelSpec
from agents.prompts import render
from agents.scripted_model import ScriptedModelServer
from agents.tools import Toolset
from bench.common import write_results
from sandboxes.base import WORKSPACE_MOUNT, SandboxSpec
from sandboxes.local import LocalBackend

SUMMARY = "Files read so far: each accumulates a per-item total and returns it; none rounds. Remaining: read the rest."


def _source(n: int, chars: int) -> str:
    lines, size, j = [f"def total_{n}(items):", "    total = 0"], 0, 0
    while size < chars:
        lines.append(f"    total += compute_{j % 7}(items[{j}], factor={(j * 7 + n) % 13})  # step {j}")
        size += len(lines[-1]) + 1
        j += 1
    return "\n".join(lines + ["    return total"]) + "\n"


def _script(steps: int, window: int | None, note: int) -> dict[str, Any]:
    condenser = render("condenser").split("\n")[0][:40]
    thought = "The previous file accumulates per-item amounts and returns the total unchanged, so not there. "
    reads = [
        {
            "match": {"role": "coder"},
            "content": (thought * (note // len(thought) + 1))[:note] + f" Reading f{n:02}.py next.",
            "tool_calls": [{"name": "view_file", "arguments": {"path": f"f{n:02}.py"}}],
        }
        for n in range(steps)
    ]
    submit = {"match": {"role": "coder"}, "tool_calls": [{"name": "submit", "arguments": {"summary": "read all"}}]}
    summaries = {"match": {"any_message_contains": condenser}, "content": SUMMARY, "repeat": True}
    return {"context_window": window, "responses": [summaries, *reads, submit]}


class _Condensations(list):
    """Keeps the condensations of a run (agents.loop.AgentObserver); the other steps do not matter here."""

    def message(self, step: int, reply: Any, usage: Any) -> None:
        pass

    def tool_result(self, step: int, observation: Any, arguments: Any) -> None:
        pass

    def condensed(self, step: int, condensation: Any) -> None:
        self.append(condensation.model_dump())

    def finished(self, outcome: Any) -> None:
        pass


def _run(steps: int, chars: int, note: int, window: int, managed: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        workspace = Path(tmp)
        for n in range(steps):
            (workspace / f"f{n:02}.py").write_text(_source(n, chars))
        sandbox = LocalBackend().start(SandboxSpec(workspace=workspace))
        # Unmanaged, the server must not refuse: the point is what the run would send.
        with ScriptedModelServer(_script(steps, window if managed else None, note)) as server:
            model = ModelClient(ModelSpec(base_url=server.base_url, model="scripted"), role="coder")
            condensations = _Condensations()
            outcome = run_agent(
                model,
                Toolset(sandbox),
                render("coder", workspace=WORKSPACE_MOUNT, network=False),
                "Find where the totals lose their cents.",
                AgentLimits(max_steps=steps + 5),
                observer=condensations,
                context=ContextWindow(window) if managed else None,
            )
            requests = server.requests
        sandbox.stop()
    assert outcome.submitted, outcome.reason
    tokens = [r.tokens or 0 for r in requests]
    last = requests[-1].messages
    return {
        "requests": len(requests),
        "tokens_sent": sum(tokens),
        "largest_request": max(tokens),
        "requests_over_window": sum(t > window for t in tokens),
        "condensations": len(condensations),
        "elided_in_last_request": sum(str(m.get("content")).startswith("[output of") for m in last),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="files read, one a step")
    parser.add_argument("--window", type=int, default=16_000, help="the model's context window, in tokens")
    parser.add_argument("--chars", type=int, default=20_000, help="characters of each file")
    parser.add_argument("--note", type=int, default=600, help="characters the model writes with each tool call")
    args = parser.parse_args()
    without = _run(args.steps, args.chars, args.note, args.window, managed=False)
    managed = _run(args.steps, args.chars, args.note, args.window, managed=True)
    ratio = managed["tokens_sent"] / without["tokens_sent"]
    print(f"{args.steps} steps reading {args.chars:,}-character files, {args.window:,}-token window")
    print(f"    without context management: {without['tokens_sent']:,} tokens sent, largest request "
          f"{without['largest_request']:,}, {without['requests_over_window']} of {without['requests']} requests "
          "over the window")
    print(f"    with it: {managed['tokens_sent']:,} tokens sent (summaries included), largest request "
          f"{managed['largest_request']:,}, {managed['requests_over_window']} over the window, "
          f"{managed['condensations']} condensations, {managed['elided_in_last_request']} observations elided "
          "in the last request")
    print(f"    ratio: tokens sent with / without = {ratio:.3f}")
    figures = {"steps": args.steps, "chars": args.chars, "note": args.note, "window": args.window, "without": without,
               "managed": managed, "tokens_ratio": ratio}
    print(f"wrote {write_results('context_bench', figures)}")


if __name__ == "__main__":
    main()
