"""Agent start-up from a cached project environment, against a bare sandbox (goal: at most 1.2x).

A src-layout package is set up once (a venv with the project installed editable, offline: pip
sees the image's setuptools); then, per backend, the median time from "start a sandbox" to the
end of its first command, for a sandbox started from the cached environment (its image on
docker, its directory mounted on bubblewrap) and for a bare one. The cache lookup a job does
once (read the recipe from git, hash its files, find the manifest) is timed on its own.

    python -m bench.environment_bench [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.common import median_seconds, write_results
from orchestrator.config.settings import EnvironmentSettings, Settings
from orchestrator.environments.prepare import ensure_environment
from sandboxes.base import SandboxSpec
from sandboxes.git.repo import GitRepo
from sandboxes.select import BACKENDS

IMAGE = "shipyard-sandbox:latest"
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}
FILES = {
    "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\n',
    "src/calc/__init__.py": "def add(a, b):\n    return a + b\n",
}


def make_repo(path: Path) -> GitRepo:
    for name, text in FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "calc"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return GitRepo.open(path, path.parent / "repos")


def measure(name: str, tmp: Path, runs: int) -> dict[str, float] | None:
    backend = BACKENDS[name]()
    if not backend.availability(IMAGE).ok:
        return None
    repo = make_repo(tmp / name / "calc")
    sha = repo.resolve("main")
    settings = Settings(state_dir=tmp / name / "state", environment=EnvironmentSettings(env=OFFLINE_PIP, network=False))
    prepared = ensure_environment(repo, sha, settings, backend, emit=lambda event: None)
    assert prepared is not None
    workspace = tmp / name / "workspace"
    workspace.mkdir()
    bare = SandboxSpec(workspace=workspace, image=IMAGE, labels={"bench": "environment"})
    cached = prepared.apply(bare)

    def start(spec: SandboxSpec) -> None:
        with backend.start(spec) as sandbox:
            sandbox.exec("true")

    start(cached)  # warm both once: the first container of an image pays for its layers
    start(bare)
    # Interleaved, so that the load of a shared machine falls on both alike.
    bare_times, cached_times = [], []
    for _ in range(runs):
        bare_times.append(median_seconds(lambda: start(bare), 1))
        cached_times.append(median_seconds(lambda: start(cached), 1))
    bare_s, cached_s = statistics.median(bare_times), statistics.median(cached_times)
    lookup_s = median_seconds(lambda: ensure_environment(repo, sha, settings, backend, emit=lambda event: None),
                              max(3, runs // 2))
    if prepared.image:
        BACKENDS["docker"]().remove_image(prepared.image)  # type: ignore[attr-defined]
    return {"setup_s": prepared.setup_seconds, "bare_start_s": bare_s, "cached_start_s": cached_s,
            "cache_lookup_s": lookup_s, "ratio": cached_s / bare_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        for name in ("bubblewrap", "docker"):
            figures = measure(name, Path(tmp), args.runs)
            if figures is None:
                print(f"{name:<11} not available here, skipped")
                continue
            results[name] = figures
            print(f"{name:<11} agent start from the cached environment {figures['cached_start_s'] * 1000:7.1f} ms, "
                  f"bare sandbox {figures['bare_start_s'] * 1000:7.1f} ms: {figures['ratio']:.2f}x (goal <= 1.2x); "
                  f"set up once in {figures['setup_s']:.1f} s, found again per job in "
                  f"{figures['cache_lookup_s'] * 1000:.0f} ms")
    write_results("environment_bench", results)


if __name__ == "__main__":
    main()
