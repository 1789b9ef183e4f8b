"""Baseline-aware verdicts: each category, targets, the degraded cases, and the rendering."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.engine.test_comparison import compare_runs, matches_target, render_comparison
from orchestrator.engine.test_results import TestReport, not_run


def report(outcomes: dict[str, str] | None = None, exit_code: int | None = None, **fields: Any) -> TestReport:
    """A per-test report (JUnit XML) of `outcomes`, or exit-code only when `outcomes` is None."""
    if outcomes is None:
        return TestReport(command="make test", exit_code=exit_code, source="exit-code", **fields)
    failing = any(o in ("failed", "error") for o in outcomes.values())
    code = exit_code if exit_code is not None else int(failing)
    return TestReport(command="python3 -m pytest", exit_code=code, source="junit-xml", outcomes=outcomes, **fields)


BASE = report({"t.py::a": "passed", "t.py::b": "passed", "t.py::c": "failed", "t.py::d": "failed",
               "t.py::e": "passed", "t.py::f": "skipped", "t.py::g": "passed", "t.py::h": "error"})


def test_every_category() -> None:
    now = report({"t.py::a": "passed", "t.py::b": "failed", "t.py::c": "failed", "t.py::d": "passed",
                  "t.py::f": "failed", "t.py::g": "skipped", "t.py::h": "xfailed", "t.py::n1": "passed",
                  "t.py::n2": "error", "t.py::n3": "skipped"}, messages={"t.py::b": "AssertionError: 1 != 2"})
    c = compare_runs(BASE, now)
    assert c.newly_failing == ["t.py::b"]
    assert c.pre_existing_failures == ["t.py::c"]
    assert c.fixed == ["t.py::d"]
    assert c.removed == ["t.py::e"]
    # A test skipped at base runs now: like a new one. A failing test now xfailed is not fixed.
    assert c.new_failing == ["t.py::f", "t.py::n2"]
    assert c.new_passing == ["t.py::n1"]
    assert c.newly_skipped == ["t.py::g", "t.py::h", "t.py::n3"]
    assert (c.verdict, c.reasons) == ("failed", ["1 test that passed at base fails", "2 new tests fail"])
    assert c.per_test and c.counts == {"passed": 3, "failed": 3, "skipped": 2, "xfailed": 1, "error": 1}


def test_pre_existing_failures_are_not_held_against_the_work() -> None:
    now = report({"t.py::a": "passed", "t.py::b": "passed", "t.py::c": "failed", "t.py::d": "failed",
                  "t.py::e": "passed", "t.py::g": "passed", "t.py::h": "error", "t.py::new": "passed"})
    c = compare_runs(BASE, now, targets=["t.py::new"])
    assert (c.verdict, c.reasons) == ("passed", ["nothing that passed at base fails; 3 failures from before remain"])
    assert c.pre_existing_failures == ["t.py::c", "t.py::d", "t.py::h"]
    assert c.targets_passing == ["t.py::new"]


@pytest.mark.parametrize(
    ("targets", "reasons"),
    [
        (["t.py::gone"], ["no test ran for t.py::gone"]),
        (["t.py::c"], ["1 targeted test does not pass"]),  # failing at base is no excuse for a target
        (["t.py::f"], ["1 targeted test does not pass"]),  # skipped is not passing
        (["t.py"], ["4 targeted tests do not pass"]),  # c, d, f and h
    ],
)
def test_targets_must_run_and_pass(targets: list[str], reasons: list[str]) -> None:
    c = compare_runs(BASE, BASE, targets=targets)
    assert (c.verdict, c.reasons) == ("failed", reasons)


def test_no_tests_ran() -> None:
    assert compare_runs(BASE, report({})).reasons == ["no tests ran; 4 passed at base"]
    assert compare_runs(report({}), report({})).verdict == "unverified"
    assert compare_runs(None, not_run("no test command found")).reasons == ["no test command found"]


@pytest.mark.parametrize(
    ("base", "now", "verdict", "reason"),
    [
        # per-test now, exit code only at base
        (report(None, 0), report({"a": "passed"}), "passed", "no test fails (the baseline has no per-test results)"),
        (report(None, 0), report({"a": "failed"}), "failed", "1 test fails and the suite passed at base"),
        (None, report({"a": "failed", "b": "error"}), "failed", "2 tests fail and there is no baseline"),
        (report(None, 1), report({"a": "failed"}), "unverified",
         "1 test fails, and the baseline, which failed too, has no per-test results to tell whether they failed "
         "before"),
        # exit code only now
        (BASE, report(None, 0), "passed", "the suite exits 0 (exit code only, no per-test results)"),
        (report(None, 0), report(None, 2), "failed", "the suite fails (exit code 2); it passed at base"),
        (BASE, report(None, 2), "failed", "the suite fails (exit code 2) without per-test results, which it gave at "
         "base: the suite may no longer start"),
        (report(None, 1), report(None, 1), "unverified", "the suite fails (exit code 1), as at base (exit code 1); "
         "without per-test results new failures cannot be told from old ones"),
        (None, report(None, 1), "failed", "the suite fails (exit code 1) and there is no baseline"),
        # timeouts
        (BASE, report(None, 124, timed_out=True, note="the run was stopped after 300 s"), "failed",
         "the suite timed out (the run was stopped after 300 s)"),
        (report(None, 124, timed_out=True), report(None, 124, timed_out=True), "unverified",
         "the suite timed out, at base as well"),
    ],
)
def test_degraded_verdicts(base: TestReport | None, now: TestReport, verdict: str, reason: str) -> None:
    c = compare_runs(base, now)
    assert (c.verdict, c.reasons) == (verdict, [reason])


def test_targets_of_an_exit_code_only_run_are_said_to_be_unchecked() -> None:
    c = compare_runs(None, report(None, 0), targets=["tests/test_x.py"])
    assert c.reasons == ["the suite exits 0 (exit code only, no per-test results); the targets (tests/test_x.py) "
                         "cannot be checked"]


@pytest.mark.parametrize(
    ("test", "target", "matches"),
    [
        ("tests/test_x.py::test_a", "tests/test_x.py::test_a", True),
        ("tests/test_x.py::test_a[1-2]", "tests/test_x.py::test_a", True),
        ("tests/test_x.py::TestC::test_a", "tests/test_x.py::TestC", True),
        ("tests/test_x.py::test_a", "tests/test_x.py", True),
        ("tests/test_x.py::test_a", "tests/", True),
        ("tests/test_x.py::test_a", "./tests", True),
        ("tests/test_xy.py::test_a", "tests/test_x", False),
        ("tests/test_x.py::test_ab", "tests/test_x.py::test_a", False),
        ("tests.test_x.T.test_a", "tests/test_x.py", True),  # unittest ids by module
        ("pkg.tests.test_m.T.test_a", "src/pkg/tests/test_m.py", True),
        ("pkg.tests.test_m.T.test_a", "src/pkg/tests/", True),
        ("pkg.tests.test_mm.T.test_a", "src/pkg/tests/test_m.py", False),
        ("tests/api.rs::negative", "tests/api.rs", True),
        ("anything", "", False),
    ],
)
def test_matches_target(test: str, target: str, matches: bool) -> None:
    assert matches_target(test, target) is matches


def test_reports_and_comparisons_survive_a_checkpoint() -> None:
    now = report({"t.py::a": "failed", "t.py::new": "passed"}, messages={"t.py::a": "boom"}, note="n", seconds=1.5)
    comparison = compare_runs(BASE, now, targets=["t.py::new"])
    for model in (BASE, now, comparison):
        assert type(model).model_validate_json(model.model_dump_json()) == model


def test_rendering_for_prompts() -> None:
    now = report({"t.py::a": "passed", "t.py::b": "failed", "t.py::c": "failed", "t.py::d": "failed",
                  "t.py::g": "passed", "t.py::h": "error", "t.py::new": "passed"},
                 messages={"t.py::b": "AssertionError: 1 != 2", "t.py::h": "ImportError: x"})
    text = render_comparison(compare_runs(BASE, now, targets=["t.py::new"]))
    assert text.splitlines() == [
        "Tests: failed — 1 test that passed at base fails.",
        "Now: 1 error, 3 failed, 3 passed.",
        "3 failures were already there at base and are not yours to fix: t.py::c; t.py::d; t.py::h (ImportError: x).",
        "Newly failing (passed at base): t.py::b (AssertionError: 1 != 2).",
        "Gone since base (ran then, absent now): t.py::e; t.py::f.",
        "New tests passing: t.py::new.",
    ]


def test_rendering_is_bounded() -> None:
    many = {f"t.py::t{i:03}": "passed" for i in range(200)}
    text = render_comparison(compare_runs(report(many), report({k: "failed" for k in many})), most=3)
    assert "Newly failing (passed at base): t.py::t000; t.py::t001; t.py::t002; and 197 more." in text
    assert render_comparison(compare_runs(None, report(None, 0))) == \
        "Tests: passed — the suite exits 0 (exit code only, no per-test results)."
