"""The discovered commands run for real, in local, bubblewrap and docker sandboxes, and their results read back."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import realrepos
from realrepos import git

from agents.repo_files import HostRepoFiles
from agents.test_discovery import TestCommand, describe_test_command, discover_test_command
from orchestrator.engine.test_comparison import compare_runs, render_comparison
from orchestrator.engine.test_results import RESULTS_DIR, TestReport, run_suite
from orchestrator.engine.test_tampering import find_test_tampering, render_tampering
from sandboxes.base import BASE_ENV, WORKSPACE_MOUNT, Sandbox, SandboxBackend, SandboxSpec
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DEFAULT_TAG, DockerBackend
from sandboxes.local import LocalBackend

pytestmark = pytest.mark.skipif(not realrepos.system_pytest_available(), reason="/usr/bin/python3 has no pytest")

BACKENDS = [
    pytest.param("local"),
    pytest.param("bubblewrap", marks=[pytest.mark.bubblewrap,
                                      pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bwrap")]),
    pytest.param("docker", marks=pytest.mark.docker),
]
StartSandbox = Callable[..., Sandbox]


@pytest.fixture(params=BACKENDS)
def start(request: pytest.FixtureRequest) -> Iterator[StartSandbox]:
    """Start a sandbox of the backend on a repo; `venv` (a path in the repo) goes first on PATH."""
    started: list[Sandbox] = []
    backend: SandboxBackend = {"local": LocalBackend, "bubblewrap": BubblewrapBackend,
                               "docker": DockerBackend}[request.param]()
    available = backend.availability(DEFAULT_TAG)
    if not available.ok:
        pytest.skip(available.detail)

    def make(repo: Path, venv: str | None = None, env: dict[str, str] | None = None) -> Sandbox:
        root = str(repo) if request.param == "local" else WORKSPACE_MOUNT
        spec_env = dict(env or {})
        if venv:
            spec_env["PATH"] = f"{root}/{venv}/bin:{BASE_ENV['PATH']}"
        sandbox = backend.start(SandboxSpec(workspace=repo, env=spec_env))
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def discovered(repo: Path) -> TestCommand:
    command = discover_test_command(HostRepoFiles(repo))
    assert isinstance(command, TestCommand), command
    return command


def run(sandbox: Sandbox, repo: Path, name: str = "run") -> TestReport:
    return run_suite(sandbox, discovered(repo), name)


def test_src_layout_imports_from_the_source(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.src_layout_repo(tmp_path / "calc")
    sandbox = start(repo)
    report = run(sandbox, repo)
    assert (report.source, report.exit_code) == ("junit-xml", 0)
    assert report.outcomes == {"tests/test_ops.py::test_add[1-2-3]": "passed",
                               "tests/test_ops.py::test_add[-1-1-0]": "passed",
                               "tests/test_ops.py::test_mean": "passed",
                               "tests/test_ops.py::test_mean_of_nothing": "passed"}
    assert report.counts == {"passed": 4}
    # Without the src fallback the package is not importable: one collection error, no tests.
    plain = run_suite(sandbox, describe_test_command("python3 -m pytest", "test"), "plain")
    assert plain.outcomes == {"tests/test_ops.py": "error"}
    assert plain.messages == {"tests/test_ops.py": "ModuleNotFoundError: No module named 'calc'"}


def test_tests_inside_the_package(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    report = run(start(repo), repo)
    assert report.outcomes == {"shop/tests/test_cart.py::test_total": "passed",
                               "shop/tests/test_cart.py::TestEmpty::test_total_is_zero": "passed"}


def test_unittest_suite(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.unittest_repo(tmp_path / "stock")
    report = run(start(repo), repo)
    assert (report.source, report.ok) == ("unittest-verbose", True)
    assert report.outcomes == {"tests.test_stock.RestockTest.test_adds": "passed",
                               "tests.test_stock.RestockTest.test_refuses_negative": "passed",
                               "tests.test_stock.RestockTest.test_remote_stock": "skipped"}
    assert "[2 lines of passing tests left out]" in report.output


def test_a_third_party_dependency_from_the_environment(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.dependency_repo(tmp_path / "report")
    with_venv = run(start(repo, venv=".venv"), repo, "venv")
    assert with_venv.outcomes == {"tests/test_report.py::test_headline": "passed",
                                  "tests/test_report.py::test_empty": "passed"}
    without = run(start(repo), repo, "bare")
    assert without.outcomes == {"tests/test_report.py": "error"}
    assert without.messages["tests/test_report.py"] == "ModuleNotFoundError: No module named 'tinydep'"
    # The venv is ignored by the repo, the results by their own .gitignore: nothing to commit.
    assert git(repo, "status", "--porcelain") == ""


def test_failing_baseline_good_work_passes(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    sandbox = start(repo)
    base = run(sandbox, repo, "base")
    assert base.outcomes == {
        "tests/test_charts.py": "error",
        "tests/test_remote.py::test_auth_header": "failed",
        "tests/test_units.py::test_c_to_f": "passed",
        "tests/test_units.py::test_f_to_c": "passed",
        **{f"tests/test_units.py::test_round_trip[{c}]": "passed" for c in (-40, 0, 37)},
    }
    assert base.messages == {"tests/test_charts.py": "ModuleNotFoundError: No module named 'weatherplot'",
                             "tests/test_remote.py::test_auth_header": "KeyError: 'WEATHER_API_TOKEN'"}
    assert not base.ok

    realrepos.add_kelvin(repo)
    now = run(sandbox, repo, "after")
    comparison = compare_runs(base, now, targets=["tests/test_units.py::test_c_to_k"])
    assert comparison.verdict == "passed", comparison.reasons
    assert comparison.pre_existing_failures == ["tests/test_charts.py", "tests/test_remote.py::test_auth_header"]
    assert (comparison.new_passing, comparison.targets_passing) == (["tests/test_units.py::test_c_to_k"],) * 2
    assert comparison.newly_failing == comparison.removed == []
    text = render_comparison(comparison)
    assert "2 failures were already there at base and are not yours to fix: tests/test_charts.py " \
           "(ModuleNotFoundError: No module named 'weatherplot'); tests/test_remote.py::test_auth_header " \
           "(KeyError: 'WEATHER_API_TOKEN')." in text


def test_failing_baseline_broken_work_fails(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    sandbox = start(repo)
    base = run(sandbox, repo, "base")
    realrepos.break_f_to_c(repo)
    comparison = compare_runs(base, run(sandbox, repo, "after"))
    assert comparison.verdict == "failed"
    assert comparison.newly_failing == ["tests/test_units.py::test_f_to_c",
                                        *[f"tests/test_units.py::test_round_trip[{c}]" for c in (-40, 0, 37)]]
    assert comparison.reasons == ["4 tests that passed at base fail"]
    assert comparison.pre_existing_failures == ["tests/test_charts.py", "tests/test_remote.py::test_auth_header"]


def test_failing_baseline_made_green_by_tampering(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    sandbox = start(repo)
    base_sha = git(repo, "rev-parse", "HEAD").strip()
    base = run(sandbox, repo, "base")
    realrepos.hide_failures(repo)
    comparison = compare_runs(base, run(sandbox, repo, "after"))
    # The runs alone cannot see it: nothing that passed fails.
    assert comparison.verdict == "passed"
    assert comparison.newly_skipped == ["tests/test_units.py::test_f_to_c"]
    assert comparison.removed == ["tests/test_remote.py::test_auth_header"]
    # The diff does.
    findings = find_test_tampering(git(repo, "diff", f"{base_sha}..HEAD"))
    assert [(f.kind, f.path) for f in findings] == [
        ("deleted_test_file", "tests/test_remote.py"),
        ("added_skip", "tests/test_units.py"),
        ("removed_assertions", "tests/test_units.py"),
    ]
    text = render_tampering(findings)
    assert "- tests/test_remote.py: test file deleted (1 test: test_auth_header)" in text
    skip_line = (repo / "tests/test_units.py").read_text().splitlines().index("@pytest.mark.skip(reason='flaky')") + 1
    assert f"- tests/test_units.py:{skip_line}: skip added: `@pytest.mark.skip(reason='flaky')`" in text


def test_a_command_that_changes_directory(tmp_path: Path, start: StartSandbox) -> None:
    repo = tmp_path / "mono"
    realrepos.write(repo, {"backend/tests/test_api.py": "def test_api():\n    assert True\n",
                           "frontend/package.json": "{}\n"})
    report = run_suite(start(repo), describe_test_command("cd backend && python3 -m pytest", "settings"), "mono")
    assert (report.source, report.outcomes) == ("junit-xml", {"tests/test_api.py::test_api": "passed"})


def test_a_run_out_of_time(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    realrepos.write(repo, {"tests/test_slow.py": "import time\n\n\ndef test_slow():\n    print('started', flush=True)\n"
                                                 "    time.sleep(600)\n"})
    sandbox = start(repo)
    report = run_suite(sandbox, discovered(repo), "slow", timeout=3)
    assert report.timed_out and report.source == "exit-code"
    assert report.note is not None and report.note.startswith("the run was stopped after")
    assert "tests/test_slow.py" in report.output  # the log written until then
    assert compare_runs(None, report).verdict == "failed"


def test_results_of_an_earlier_run_are_never_read_again(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    sandbox = start(repo)
    assert run(sandbox, repo, "same").source == "junit-xml"
    broken = run_suite(sandbox, describe_test_command("python3 -m pytest --no-such-option", "test"), "same")
    assert (broken.source, broken.outcomes, broken.exit_code) == ("exit-code", {}, 4)
    assert "no such option" in broken.output or "unrecognized arguments" in broken.output
    assert (repo / RESULTS_DIR / ".gitignore").read_text() == "*\n"


def test_the_pytest_summary_when_no_junit_xml_is_written(tmp_path: Path, start: StartSandbox) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    # A conftest that turns the JUnit plugin's output away: the -rA short summary is what is left.
    realrepos.write(repo, {"conftest.py": "def pytest_configure(config):\n    config.option.xmlpath = None\n"})
    report = run(start(repo), repo)
    assert report.source == "pytest-summary"
    assert report.note == "no JUnit XML was written: outcomes from pytest's short summary (skips by location)"
    assert report.outcomes["tests/test_units.py::test_round_trip[-40]"] == "passed"
    assert report.outcomes["tests/test_remote.py::test_auth_header"] == "failed"
    assert report.outcomes["tests/test_charts.py"] == "error"
    assert "PASSED " not in report.output and "lines of passing tests left out]" in report.output


def test_cargo_results(tmp_path: Path) -> None:
    env = realrepos.cargo_env()
    if env is None:
        pytest.skip("cargo is not installed")
    repo = realrepos.cargo_crate(tmp_path / "calc")
    with LocalBackend().start(SandboxSpec(workspace=repo, env=env)) as sandbox:
        report = run_suite(sandbox, discovered(repo), "cargo", timeout=240)
    assert (report.source, report.exit_code) == ("cargo-libtest", 0), report.output
    assert report.outcomes == {"src/lib.rs::tests::adds": "passed", "src/lib.rs::tests::slow": "skipped",
                               "tests/api.rs::negative": "passed",
                               "doc-tests calc::src/lib.rs - add (line 3)": "passed"}
    realrepos.write(repo, {"src/lib.rs": (repo / "src/lib.rs").read_text().replace("a + b\n", "a - b\n")})
    with LocalBackend().start(SandboxSpec(workspace=repo, env=env)) as sandbox:
        broken = run_suite(sandbox, discovered(repo), "cargo", timeout=240)
    # Every test binary ran although the first one failed (--no-fail-fast).
    assert compare_runs(report, broken).newly_failing == [
        "doc-tests calc::src/lib.rs - add (line 3)", "src/lib.rs::tests::adds", "tests/api.rs::negative"]


def test_npm_reports_the_exit_code(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    repo = realrepos.node_repo(tmp_path / "slug")
    with LocalBackend().start(SandboxSpec(workspace=repo)) as sandbox:
        report = run_suite(sandbox, discovered(repo), "npm")
    assert (report.source, report.ok, report.outcomes) == ("exit-code", True, {})
    assert compare_runs(report, report).reasons == ["the suite exits 0 (exit code only, no per-test results)"]
