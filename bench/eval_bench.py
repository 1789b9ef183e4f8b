"""The evaluation harness's own cost: the bundled mini-suite against a scripted model with a fixed latency.

1. The harness alone: the suite with one worker and a model that answers at once: the
   seconds per instance that sandboxes, git, the job graph, the hidden tests and the
   bookkeeping take (this first run also warms the caches for the next two).
2. Overhead: the same with every model call waiting `latency` seconds at the server; the
   wall time against the model's own time (all calls one after another).
3. Workers: the same with two workers; the speed-up against one worker, next to the
   ideal of 2 (the model waits of two instances overlap perfectly).
4. Grading: the hidden tests' share of the instances' wall time.

    python -m bench.eval_bench [--latency S] [--backend NAME]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agents.scripted_model import ScriptedModelServer
from bench.common import write_results
from orchestrator.apps.demo import demo_settings
from orchestrator.apps.evaluation import mini_suite
from orchestrator.apps.evaluation.instances import load_instances
from orchestrator.apps.evaluation.results import EvalReport
from orchestrator.apps.evaluation.runner import EvalOptions, EvalRunner


def run_suite(workers: int, latency: float, backend: str) -> tuple[EvalReport, float, int]:
    """The whole mini-suite from scratch: its report, wall seconds and model calls."""
    script = {**yaml.safe_load(mini_suite.SCRIPT.read_text()), "latency": latency}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp, ScriptedModelServer(script) as server:
        workdir = Path(tmp)
        repos = mini_suite.materialize(workdir / "repos")
        options = EvalOptions(output=workdir / "out", workers=workers, repos_dir=repos)
        runner = EvalRunner(demo_settings(workdir, server.base_url, backend), options, mini_suite.INSTANCES)
        started = time.perf_counter()
        report = runner.run(load_instances(mini_suite.INSTANCES))
        wall = time.perf_counter() - started
        calls = len(server.requests)
    if report.summary.resolved != mini_suite.EXPECTED_RESOLVED:
        raise SystemExit(f"eval_bench: {report.summary.resolved} resolved, expected {mini_suite.EXPECTED_RESOLVED}")
    return report, wall, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="model seconds per answer")
    parser.add_argument("--backend", default="bubblewrap")
    args = parser.parse_args()
    _, wall_0, _ = run_suite(1, 0.0, args.backend)
    one, wall_1, calls = run_suite(1, args.latency, args.backend)
    _, wall_2, _ = run_suite(2, args.latency, args.backend)
    instances = one.summary.instances
    model_s = calls * args.latency
    tests_s = sum(r.tests.seconds for r in one.results if r.tests)
    figures: dict[str, Any] = {
        "backend": args.backend, "instances": instances, "model_calls": calls, "latency_s": args.latency,
        "model_s": model_s, "wall_instant_model_s": wall_0, "wall_1_worker_s": wall_1, "wall_2_workers_s": wall_2,
        "harness_s_per_instance": wall_0 / instances,
        "overhead_per_instance_s": (wall_1 - model_s) / instances,
        "wall_vs_model_time": wall_1 / model_s,
        "speedup_2_workers": wall_1 / wall_2,
        "hidden_tests_share": tests_s / one.summary.wall_seconds,
    }
    print(f"harness alone (the model answers at once): {wall_0:.1f} s for {instances} instances, "
          f"{figures['harness_s_per_instance']:.1f} s per instance")
    print(f"{calls} model calls at {args.latency:g} s = {model_s:.1f} s of model time")
    print(f"1 worker: wall {wall_1:.1f} s, x{figures['wall_vs_model_time']:.2f} the model time: "
          f"harness and sandboxes add {figures['overhead_per_instance_s']:.1f} s per instance")
    print(f"2 workers: wall {wall_2:.1f} s, speed-up x{figures['speedup_2_workers']:.2f} (ideal x2.00)")
    print(f"hidden tests: {figures['hidden_tests_share']:.1%} of the instances' wall time")
    print(f"wrote {write_results('eval_bench', figures)}")


if __name__ == "__main__":
    main()
