"""Start-up: `shipyard --help`, `shipyard jobs` and `shipyard show` against a bare `python -c 'import typer, rich'`.

Each command is a fresh process, run several times; the medians of its wall time and of its CPU time (user +
system, from the kernel's accounting of the child) are compared with the bare import's. Goal: `--help` within
2x the bare import. For reference, the `--help` of a two-command typer app: what typer's rich help costs by
itself, whatever the CLI does.

    python -m bench.startup_bench [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results

ROOT = Path(__file__).resolve().parents[1]
GOAL = 2.0
TYPER_APP = """
import typer
app = typer.Typer(add_completion=False)
app.command("a")(lambda: None)
app.command("b")(lambda: None)
app()
"""


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    _once(argv, env)  # warm the page cache and the bytecode cache
    samples = [_once(argv, env) for _ in range(runs)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SHIPYARD_STATE_DIR": str(Path(tmp) / "state"), "PYTHONPATH": str(ROOT)}
        job_id = subprocess.run(
            [sys.executable, "-c", "from orchestrator.store.db import open_store; from orchestrator.store.jobs import "
             "Task; from orchestrator.store.records import JobRecords; import sys; "
             "print(JobRecords(open_store(sys.argv[1])).submit(Task(instruction='a note', repo='.', base='main')).id)",
             f"sqlite:///{Path(tmp) / 'state' / 'shipyard.db'}"],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        shipyard = [sys.executable, "-m", "orchestrator"]
        cases = {
            "bare import typer, rich": [sys.executable, "-c", "import typer, rich"],
            "a typer app's --help": [sys.executable, "-c", TYPER_APP, "--help"],
            "shipyard --help": [*shipyard, "--help"],
            "shipyard jobs": [*shipyard, "jobs"],
            "shipyard show": [*shipyard, "show", job_id],
        }
        figures = {name: dict(zip(("wall_s", "cpu_s"), measure(argv, env, args.runs), strict=True))
                   for name, argv in cases.items()}
    bare = figures["bare import typer, rich"]
    print("startup_bench")
    for name, fig in figures.items():
        ratio = f"  x{fig['wall_s'] / bare['wall_s']:.2f} wall, x{fig['cpu_s'] / bare['cpu_s']:.2f} cpu"
        print(f"    {name:<24} wall {fig['wall_s'] * 1000:7.1f} ms   cpu {fig['cpu_s'] * 1000:7.1f} ms"
              + ("" if fig is bare else ratio))
    help_ratio = figures["shipyard --help"]["wall_s"] / bare["wall_s"]
    print(f"    ratio: shipyard --help / bare import = {help_ratio:.2f} (goal <= {GOAL:.1f})")
    write_results("startup_bench", {"figures": figures, "help_ratio": help_ratio, "goal": GOAL})


if __name__ == "__main__":
    main()
