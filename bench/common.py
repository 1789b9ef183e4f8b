"""What every benchmark shares: timing, the machine it ran on, and where results go."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"


def median_seconds(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                                "machine": machine(), **figures}, indent=2) + "\n")
    return path


@contextmanager
def served_apart(script: list[dict[str, Any]]) -> Iterator[str]:
    """The scripted model served by a process of its own, as a model server is: its CPU and memory are not the
    orchestrator's. Yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-model-") as tmp:
        path = Path(tmp) / "script.json"
        path.write_text(json.dumps(script))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = path.with_suffix(".log").open("w+")
        server = subprocess.Popen([sys.executable, "-m", "agents.scripted_model", str(path), "--port", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 60
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    httpx.get(f"{base_url}/models", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            else:
                log.seek(0)
                raise RuntimeError(f"the scripted model server did not start: {log.read()[-500:]}")
            yield base_url
        finally:
            server.terminate()
            server.wait(timeout=10)
            log.close()
