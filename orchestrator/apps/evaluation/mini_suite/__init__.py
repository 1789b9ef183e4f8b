"""The bundled mini-suite: eight small SWE-bench-style instances on three tiny repos, usable offline.

The repos ship as plain files (a nested .git cannot be committed); `materialize` turns
them into git repos whose commits are byte-for-byte reproducible, so the `base_commit`
of every instance in instances.jsonl names a real commit. script.yaml is a scripted
model that solves six of the eight: one patch is wrong, one breaks a PASS_TO_PASS test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.apps.evaluation.instances import Instance, load_instances

SUITE_DIR = Path(__file__).parent
INSTANCES = SUITE_DIR / "instances.jsonl"
SCRIPT = SUITE_DIR / "script.yaml"
REPOS = SUITE_DIR / "repos"
OWNER = "shipyard-mini"
EXPECTED_RESOLVED = 6

# Fixed identity, dates and config make the commit sha depend on the files alone.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Shipyard mini-suite", "GIT_AUTHOR_EMAIL": "mini-suite@shipyard.invalid",
    "GIT_COMMITTER_NAME": "Shipyard mini-suite", "GIT_COMMITTER_EMAIL": "mini-suite@shipyard.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+00:00", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+00:00",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin",
}


class MiniSuiteError(RuntimeError):
    """The shipped repos do not reproduce the commits the instances name."""


def materialize(dest: Path) -> Path:
    """The mini-suite's repos as git repos under `dest/<owner>/<name>` (kept if already there);
    returns `dest`, to be passed as the repos directory."""
    for source in sorted(p for p in REPOS.iterdir() if p.is_dir()):
        target = dest / OWNER / source.name
        if not target.exists():
            _make_repo(source, target)
    _check_commits(dest, load_instances(INSTANCES))
    return dest


def _make_repo(source: Path, target: Path) -> None:
    # Built beside the target and renamed, so that an interrupted run leaves no half repo.
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
                    copy_function=shutil.copyfile)  # content only: the modes must not vary
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", f"{source.name} as released"]):
        subprocess.run(["git", *args], cwd=partial, env=_GIT_ENV, check=True, capture_output=True)
    partial.rename(target)


def _check_commits(dest: Path, instances: list[Instance]) -> None:
    for instance in instances:
        repo = dest / instance.repo
        found = subprocess.run(["git", "cat-file", "-e", f"{instance.base_commit}^{{commit}}"], cwd=repo,
                               env=_GIT_ENV, capture_output=True)
        if found.returncode != 0:
            raise MiniSuiteError(f"{repo} lacks {instance.instance_id}'s base commit {instance.base_commit}: "
                                 f"the files under {REPOS} changed; regenerate instances.jsonl")
