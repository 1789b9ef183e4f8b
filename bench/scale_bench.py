"""Scale: 16 agents at once, each in a sandbox of its own, in one orchestrator process.

A job of 16 independent subtasks at 1 s per model call (so 16 coders, then 16 reviewers, run side by
side, each in its own sandbox: docker where it works, else bubblewrap). Reported: the orchestrator's peak
memory (goal <= 300 MB; the scripted model server runs in the same process and is counted) and the job's
wall time against its model time (the critical path: planner, coder, reviewer in a row).

    python -m bench.scale_bench [--subtasks N] [--latency S] [--backend NAME]
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

from bench.common import write_results
from bench.orchestrator_bench import fan_out
from sandboxes.select import BACKENDS

RSS_GOAL_MB = 300


def _rss_mb() -> float:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subtasks", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--backend", default=None, help="default: docker where it works, else bubblewrap")
    args = parser.parse_args()
    backend = args.backend or ("docker" if BACKENDS["docker"]().availability("shipyard-sandbox:latest").ok
                               else "bubblewrap")
    before = _rss_mb()
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            samples.append(_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    fan = fan_out(args.subtasks, args.latency, backend)
    done.set()
    sampler.join()
    peak = max(samples + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024])
    print(f"scale_bench ({backend}): {args.subtasks} subtasks, {args.subtasks} agents at once at {args.latency:g} s "
          f"per model call")
    print(f"    orchestrator RSS: {before:.0f} MB before, peak {peak:.0f} MB during the job (goal <= {RSS_GOAL_MB} MB)")
    print(f"    wall {fan['wall_s']:.1f} s against {fan['critical_path_s']:.1f} s of model time on the critical path: "
          f"x{fan['wall_s'] / fan['critical_path_s']:.2f} (efficiency {fan['efficiency']:.2f}); "
          f"{fan['serial_model_time_s']:.0f} s of model time in all, speed-up x{fan['speedup_vs_serial']:.1f}")
    write_results("scale_bench", {"backend": backend, "rss_before_mb": before, "rss_peak_mb": peak,
                                  "rss_goal_mb": RSS_GOAL_MB, "seconds": time.perf_counter() - started, **fan})


if __name__ == "__main__":
    main()
