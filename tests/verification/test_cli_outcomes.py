"""`shipyard run` as a user runs it, on real-shaped repos: the test command it chose and why, the outcome's
one last line, and the exit code of each outcome (the README's table). The scripted model over HTTP,
real git, bubblewrap sandboxes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import realrepos
from helpers import call, coder, plan_entry, subtask

from agents.scripted_model import ScriptedModelServer

pytestmark = [
    pytest.mark.bubblewrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(not realrepos.system_pytest_available(), reason="/usr/bin/python3 has no pytest"),
]

class Shipyard:
    """The `shipyard` command, its every role answered by a scripted model server."""

    def __init__(self, server: ScriptedModelServer, workdir: Path):
        self.server = server
        self.workdir = workdir
        self.env = {**os.environ, "SHIPYARD_STATE_DIR": str(workdir / "state"), "COLUMNS": "200",
                    "SHIPYARD_MODELS__DEFAULT__BASE_URL": server.base_url,
                    "SHIPYARD_MODELS__DEFAULT__MODEL": "scripted", "SHIPYARD_SANDBOX__BACKEND": "bubblewrap"}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=self.env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=300)


Serve = Callable[[list[dict[str, Any]]], Shipyard]
REMOTE = "tests/test_remote.py::test_auth_header"
CHARTS = "tests/test_charts.py"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    servers: list[ScriptedModelServer] = []

    def start(responses: list[dict[str, Any]]) -> Shipyard:
        servers.append(ScriptedModelServer({"responses": responses}).start())
        return Shipyard(servers[-1], tmp_path)

    yield start
    for server in servers:
        server.stop()


def said(result: subprocess.CompletedProcess[str]) -> str:
    """The output as one line: rich wraps long lines at the terminal's width."""
    return " ".join(result.stdout.split())


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return [line for line in result.stdout.splitlines() if line.strip()][-1]


def test_tests_in_a_package_subfolder_verify_the_job_and_the_command_is_said(tmp_path: Path, serve: Serve) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    shipyard = serve(realrepos.add_cart_clear())
    run = shipyard("run", "add Cart.clear", "--repo", str(repo), "--base", "main")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "tests: python3 -m pytest (discovered:" in said(run) and "shop/tests/test_cart.py" in said(run)
    assert "baseline: 2 passed" in said(run)
    assert " succeeded" in last_line(run) and "branch shipyard/" in last_line(run)


def test_a_repo_without_tests_succeeds_unverified_with_its_own_exit_code(tmp_path: Path, serve: Serve) -> None:
    repo = realrepos.no_tests_repo(tmp_path / "tool")
    shipyard = serve(realrepos.greet_the_world())
    run = shipyard("run", "greet the world", "--repo", str(repo), "--base", "main")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "tests: none — no tests found" in said(run) and "the job will be unverified" in said(run)
    assert "succeeded, unverified: not verified: no tests ran" in last_line(run)
    reviews = [r for r in shipyard.server.requests if r.role == "reviewer"]
    assert reviews and "no tests ran" in reviews[0].messages[1]["content"]
    job_id = last_line(run).split()[1]
    result = shipyard("result", job_id)
    assert result.returncode == 3 and "succeeded, unverified" in last_line(result)


def test_a_coder_that_changes_nothing_fails_the_job_and_the_last_line_says_why(tmp_path: Path, serve: Serve) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    shipyard = serve([
        plan_entry(subtask("s1", "add a discount")),
        coder("s1", call("submit", summary="all done")),
    ])
    run = shipyard("run", "add a discount", "--repo", str(repo), "--base", "main")
    assert run.returncode == 1, run.stdout + run.stderr
    line = last_line(run)
    assert " failed: " in line and "no change made (the coder said: all done)" in line
    assert not line.strip().startswith(("└", "╰", "─", "━"))  # a sentence, not a table's border



def test_a_suite_failing_at_base_gets_its_fix_and_show_names_the_failures_that_were_there(
        tmp_path: Path, serve: Serve) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    shipyard = serve(realrepos.add_kelvin_script(repo))
    run = shipyard("run", "add kelvin", "--repo", str(repo), "--base", "main")
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = last_line(run).split()[1]
    assert last_line(run) == f"job {job_id} succeeded — branch shipyard/{job_id}"
    before = f"{CHARTS}, {REMOTE}"
    assert f"failing before any change (not held against the work): {before}" in said(run)
    assert f"failing at base {before} (pre-existing, not held against the work)" in said(run)
    shown = shipyard("show", job_id)
    assert shown.returncode == 0, shown.stderr
    assert f"job {job_id} succeeded" in said(shown)
    assert f"failing at base {before} (pre-existing, not held against the work)" in said(shown)
    assert "nothing that passed at base fails; 2 failures from before remain" in said(shown)
    assert [r.role for r in shipyard.server.requests].count("test_fixer") == 1, "the old failures were not chased"
    # The fix is on the job's branch, and no test that passed at base fails there: the suite rerun by hand.
    base = suite_outcomes(repo, "main", tmp_path / "base")
    after = suite_outcomes(repo, f"shipyard/{job_id}", tmp_path / "after")
    assert {t for t, o in base.items() if o != "PASSED"} == {CHARTS, REMOTE}
    assert [t for t, o in base.items() if o == "PASSED" and after.get(t) != "PASSED"] == []
    assert after[realrepos.KELVIN_TARGET] == "PASSED"
    assert "return c + 273.15" in realrepos.git(repo, "show", f"shipyard/{job_id}:weather/units.py")


def suite_outcomes(repo: Path, ref: str, where: Path) -> dict[str, str]:
    """Each test's outcome (PASSED, FAILED, ERROR, ...) at `ref`, from pytest's own -rA summary, run here."""
    realrepos.git(repo, "worktree", "add", "-q", "--detach", str(where), ref)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WEATHER_API_TOKEN")}
    ran = subprocess.run([realrepos.SYSTEM_PYTHON, "-m", "pytest", "-rA", "-p", "no:cacheprovider",
                          "--continue-on-collection-errors"], cwd=where, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    summary = ran.stdout.split("short test summary info", 1)[-1].splitlines()[1:]
    outcomes = dict(reversed(line.split(" - ")[0].split(" ", 1)) for line in summary
                    if line.split(" ", 1)[0] in ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS"))
    assert outcomes, ran.stdout + ran.stderr
    return outcomes
