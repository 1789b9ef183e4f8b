"""`python -m bench`: every benchmark, one after another, then their figures together.

Each benchmark runs in a process of its own, as `python -m bench.<name>` does: some measure
their process's memory, and some start runtimes (DBOS, asyncio, docker clients) that must
not carry over into the next one. Each prints its ratios as it goes and writes
bench/results/<name>.json; at the end their printed lines are shown again, together.

    python -m bench [NAME ...] [--timeout SECONDS]     e.g. python -m bench sandbox_bench
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import machine

BENCH_DIR = Path(__file__).parent
BENCHMARKS = sorted(path.stem for path in BENCH_DIR.glob("*_bench.py"))


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    exit_code: int | None = None
    timed_out: bool = False
    lines: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.timed_out:
            return "timed out"
        return "ok" if self.exit_code == 0 else f"failed (exit code {self.exit_code})"


def run(name: str, timeout: float) -> Run:
    """Run one benchmark, its stdout shown as it comes and kept; stderr goes straight through."""
    result = Run(name)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=BENCH_DIR.parent, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)

    def stop() -> None:  # the benchmark's whole process group: it may have started servers
        result.timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)

    watchdog = threading.Timer(timeout, stop)
    watchdog.start()
    try:
        for line in proc.stdout or ():
            print(line, end="", flush=True)
            result.lines.append(line.rstrip("\n"))
        result.exit_code = proc.wait()
    finally:
        watchdog.cancel()
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one benchmark may take")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    runs = []
    started = time.monotonic()
    for name in args.names or BENCHMARKS:
        print(f"\n== {name}", flush=True)
        runs.append(run(name, args.timeout))
    total = time.monotonic() - started
    info = machine()
    print(f"\n== all benchmarks: {total:.0f} s on {info['cpus']} CPUs, Python {info['python']}, {info['system']}")
    for result in runs:
        print(f"\n{result.name}: {result.outcome} in {result.seconds:.0f} s")
        for line in result.lines:
            print(f"    {line}")
    sys.exit(0 if all(r.outcome == "ok" for r in runs) else 1)


if __name__ == "__main__":
    main()
