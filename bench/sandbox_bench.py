"""Sandbox start-up and exec round trip per backend, against a plain `docker exec` subprocess.

A plain `docker exec` per command is what mini-swe-agent does; the ratio says what
Shipyard's docker backend (its exec channel to a server kept in the container, the
in-container timeout supervisor, bounded output capture) costs or saves per command
against it. Its `docker exec` fallback (an image without python3) is measured too.

    python -m bench.sandbox_bench [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from bench.common import median_seconds, write_results
from sandboxes.base import SandboxSpec
from sandboxes.docker_backend import DockerBackend
from sandboxes.select import BACKENDS

IMAGE = "shipyard-sandbox:latest"
GOAL = 0.5  # the docker round trip against a plain `docker exec`


def measure_backend(name: str, workspace: Path, runs: int) -> dict[str, float] | None:
    backend = BACKENDS[name]()
    if name != "local" and not backend.availability(IMAGE).ok:
        return None
    spec = SandboxSpec(workspace=workspace, image=IMAGE, labels={"bench": "sandbox"})

    def create_and_first_exec() -> None:
        with backend.start(spec) as sandbox:
            sandbox.exec("true")

    start = median_seconds(create_and_first_exec, max(3, runs // 4))
    with backend.start(spec) as sandbox:
        sandbox.exec("true")
        round_trip = median_seconds(lambda: sandbox.exec("true"), runs)
        figures = {"create_to_first_exec_s": start, "exec_round_trip_s": round_trip}
        if name == "docker":
            container = sandbox.name  # type: ignore[attr-defined]
            plain = ["docker", "exec", container, "sh", "-c", "true"]
            figures["plain_docker_exec_round_trip_s"] = median_seconds(
                lambda: subprocess.run(plain, check=True, capture_output=True), runs
            )
            figures["channel"] = float(sandbox.channel_open)  # type: ignore[attr-defined]
            with DockerBackend(channel_python=None).start(spec) as fallback:
                fallback.exec("true")
                figures["fallback_docker_exec_round_trip_s"] = median_seconds(lambda: fallback.exec("true"), runs)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        for name in BACKENDS:
            figures = measure_backend(name, Path(tmp), args.runs)
            if figures is None:
                print(f"{name:<11} not available here, skipped")
                continue
            results[name] = figures
            print(f"{name:<11} create→first exec {figures['create_to_first_exec_s'] * 1000:8.1f} ms   "
                  f"exec round trip {figures['exec_round_trip_s'] * 1000:7.1f} ms")
    docker = results.get("docker")
    if docker:
        ratio = docker["exec_round_trip_s"] / docker["plain_docker_exec_round_trip_s"]
        docker["ratio_vs_plain_docker_exec"] = ratio
        print(f"{'fallback':<11} docker exec per command (no exec channel)  round trip "
              f"{docker['fallback_docker_exec_round_trip_s'] * 1000:7.1f} ms")
        print(f"{'baseline':<11} plain `docker exec` subprocess round trip "
              f"{docker['plain_docker_exec_round_trip_s'] * 1000:7.1f} ms")
        over = "exec channel" if docker["channel"] else "docker exec: NO CHANNEL"
        print(f"ratio: shipyard docker command ({over}) / plain docker exec = {ratio:.3f} (goal <= {GOAL})")
    print(f"wrote {write_results('sandbox_bench', {'runs': args.runs, 'backends': results})}")


if __name__ == "__main__":
    main()
