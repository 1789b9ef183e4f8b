"""`shipyard env build|show|prune` as a user runs them, on a repo with a third-party dependency."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from envkit import OFFLINE_PIP, dependency_repo
from helpers import make_repo

pytestmark = [pytest.mark.bubblewrap, pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bwrap")]


def test_build_show_and_prune(tmp_path: Path) -> None:
    repo = dependency_repo(tmp_path / "report")
    state = tmp_path / "state"
    env = {**os.environ, "SHIPYARD_STATE_DIR": str(state), "SHIPYARD_SANDBOX__BACKEND": "bubblewrap",
           "SHIPYARD_ENVIRONMENT__ENV": json.dumps(OFFLINE_PIP), "COLUMNS": "250"}

    def shipyard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", "env", *args, "--repo", str(repo)]
                              if args[0] != "prune" else [sys.executable, "-m", "orchestrator", "env", *args],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)

    shown = shipyard("show")
    assert shown.returncode == 0, shown.stderr
    assert "source: detected (backend bubblewrap)" in shown.stdout
    assert "$ /shipyard-env/venv/bin/python -m pip install -e '.[test]'    [python]" in shown.stdout
    assert "not set up yet" in shown.stdout and "no environments cached" in shown.stdout

    built = shipyard("build")
    assert built.returncode == 0, built.stderr
    assert built.stdout.count("env.setup") == 2 and "set up in" in built.stdout
    key = built.stdout.split("environment ", 1)[1][:12]
    again = shipyard("build")
    assert again.returncode == 0 and "env.setup" not in again.stdout and f"reused (detected on bubblewrap, key {key})" \
        in again.stdout
    shown = shipyard("show")
    assert f"key: {key} — cached" in shown.stdout and key in shown.stdout.split("cached", 2)[-1]

    assert shipyard("prune", "--older-than", "1d").stdout.strip() == "removed 0 environment(s)"
    assert shipyard("prune").stdout.strip() == f"removed 1 environment(s): {key}"
    assert not any((state / "environments").glob("*/manifest.json"))
    assert "not set up yet" in shipyard("show").stdout


def test_a_repo_needing_nothing_sets_nothing_up(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "flat", {"pyproject.toml": '[project]\nname = "flat"\nversion = "0.1"\n',
                                         "flat.py": "X = 1\n", "tests/test_flat.py": "def test_x():\n    pass\n"})
    env = {**os.environ, "SHIPYARD_STATE_DIR": str(tmp_path / "state"), "SHIPYARD_SANDBOX__BACKEND": "bubblewrap",
           "COLUMNS": "250"}
    built = subprocess.run([sys.executable, "-m", "orchestrator", "env", "build", "--repo", str(repo)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("nothing to set up: nothing to install")
