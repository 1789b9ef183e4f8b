"""A later test run judged against the baseline: what broke, what was broken already, one verdict.

The verdict is `passed` when no test that passed at base fails now, no new test fails, and
the targeted tests (the subtask's own: ids or path prefixes) ran and pass. Failures that
were there at base are named, never held against the work. `unverified` says that the
runs cannot tell: no tests ran, or the suite fails at base and now without per-test
results to tell new failures from old.

With per-test results on one side only, or none, the verdict degrades:
- now per-test, base exit-code only: passed when nothing fails now; when something fails,
  failed if the suite passed at base (every failure is new), else unverified;
- now exit-code only: exit 0 passes (the targets cannot be checked, which is said);
  a failure is failed when the suite passed at base or gave per-test results there
  (the suite no longer starts), else unverified;
- no baseline at all (None): a failure counts as new;
- a run that timed out fails, unless the baseline timed out too (unverified).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.engine.test_results import FAILING, PASSING, TestReport

Verdict = Literal["passed", "failed", "unverified"]
NEUTRAL = frozenset({"skipped", "xfailed"})
# How many test names a rendering lists per category before "and N more".
MOST_NAMES = 10


class TestComparison(BaseModel):
    __test__: ClassVar[bool] = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    reasons: list[str] = Field(description="why the verdict, one sentence each")
    per_test: bool = Field(description="whether both runs gave per-test results")
    counts: dict[str, int] = Field(default_factory=dict, description="outcomes of the later run")
    newly_failing: list[str] = Field(default_factory=list, description="passed at base, fail now")
    pre_existing_failures: list[str] = Field(default_factory=list, description="failed at base, still fail")
    fixed: list[str] = Field(default_factory=list, description="failed at base, pass now")
    new_passing: list[str] = Field(default_factory=list, description="not run at base (new, or skipped), pass now")
    new_failing: list[str] = Field(default_factory=list, description="not run at base (new, or skipped), fail now")
    removed: list[str] = Field(default_factory=list, description="ran at base, absent now")
    newly_skipped: list[str] = Field(default_factory=list, description="ran at base (or new), skipped or xfailed now")
    targets: list[str] = Field(default_factory=list)
    targets_passing: list[str] = Field(default_factory=list, description="targeted tests that pass")
    targets_failing: list[str] = Field(default_factory=list, description="targeted tests that fail or were skipped")
    targets_unmatched: list[str] = Field(default_factory=list, description="targets no test ran for")
    messages: dict[str, str] = Field(default_factory=dict, description="one-line reasons of the failing tests")

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


def compare_runs(base: TestReport | None, now: TestReport, targets: Sequence[str] = ()) -> TestComparison:
    """Judge `now` against `base`; `targets` are test ids or path prefixes of the tests the work must make pass."""
    comparison = TestComparison(verdict="unverified", reasons=[], per_test=bool(base and base.per_test and
                                now.per_test), counts=now.counts, targets=list(targets), messages=now.messages)
    if now.per_test:
        _check_targets(comparison, now)
    if now.source == "not-run":
        return _verdict(comparison, "unverified", now.note or "no tests were run")
    if now.timed_out:
        if base is not None and base.timed_out:
            return _verdict(comparison, "unverified", "the suite timed out, at base as well")
        return _verdict(comparison, "failed", "the suite timed out" + (f" ({now.note})" if now.note else ""))
    if comparison.per_test and base is not None:
        _classify(comparison, base, now)
        return _per_test_verdict(comparison, base, now)
    if now.per_test:
        return _against_exit_code(comparison, base, now)
    return _exit_code_only(comparison, base, now)


def _classify(c: TestComparison, base: TestReport, now: TestReport) -> None:
    for test in sorted(base.outcomes.keys() | now.outcomes.keys()):
        before, after = base.outcomes.get(test), now.outcomes.get(test)
        if after is None:
            c.removed.append(test)
        elif after in NEUTRAL:
            if before is None or before not in NEUTRAL:
                c.newly_skipped.append(test)  # a failing test skipped now is not fixed
        elif before is None or before in NEUTRAL:
            (c.new_failing if after in FAILING else c.new_passing).append(test)
        elif before in PASSING and after in FAILING:
            c.newly_failing.append(test)
        elif before in FAILING:
            (c.pre_existing_failures if after in FAILING else c.fixed).append(test)


def _per_test_verdict(c: TestComparison, base: TestReport, now: TestReport) -> TestComparison:
    failed: list[str] = []
    if c.newly_failing:
        failed.append(f"{len(c.newly_failing)} test{_s(c.newly_failing)} that passed at base fail{_v(c.newly_failing)}")
    if c.new_failing:
        failed.append(f"{len(c.new_failing)} new test{_s(c.new_failing)} fail{_v(c.new_failing)}")
    failed += _target_problems(c)
    if not now.outcomes and base.with_outcome(*PASSING):
        failed.append(f"no tests ran; {len(base.with_outcome(*PASSING))} passed at base")
    if failed:
        return _verdict(c, "failed", *failed)
    if not now.outcomes:
        return _verdict(c, "unverified", "no tests ran, at base either")
    if c.pre_existing_failures:
        return _verdict(c, "passed", f"nothing that passed at base fails; {len(c.pre_existing_failures)} "
                        f"failure{_s(c.pre_existing_failures)} from before remain{_v(c.pre_existing_failures)}")
    return _verdict(c, "passed", "nothing that passed at base fails")


def _against_exit_code(c: TestComparison, base: TestReport | None, now: TestReport) -> TestComparison:
    """Per-test results now, none at base: every failure is new only if the suite passed at base."""
    failing = now.with_outcome(*FAILING)
    problems = _target_problems(c)
    if problems:
        return _verdict(c, "failed", *problems)
    if not now.outcomes:
        return _verdict(c, "unverified", "no tests ran")
    if not failing:
        return _verdict(c, "passed", "no test fails (the baseline has no per-test results)")
    if base is None or base.ok:
        c.newly_failing = failing
        at_base = "there is no baseline" if base is None else "the suite passed at base"
        return _verdict(c, "failed", f"{len(failing)} test{_s(failing)} fail{_v(failing)} and {at_base}")
    return _verdict(c, "unverified", f"{len(failing)} test{_s(failing)} fail{_v(failing)}, and the baseline, which "
                    "failed too, has no per-test results to tell whether they failed before")


def _exit_code_only(c: TestComparison, base: TestReport | None, now: TestReport) -> TestComparison:
    unchecked = f"; the targets ({', '.join(c.targets)}) cannot be checked" if c.targets else ""
    if now.ok:
        return _verdict(c, "passed", f"the suite exits 0 (exit code only, no per-test results){unchecked}")
    code = f"the suite fails (exit code {now.exit_code})"
    if base is None:
        return _verdict(c, "failed", f"{code} and there is no baseline")
    if base.ok:
        return _verdict(c, "failed", f"{code}; it passed at base")
    if base.per_test:
        return _verdict(c, "failed", f"{code} without per-test results, which it gave at base: the suite may "
                        "no longer start")
    return _verdict(c, "unverified", f"{code}, as at base (exit code {base.exit_code}); without per-test results "
                    "new failures cannot be told from old ones")


def _check_targets(c: TestComparison, now: TestReport) -> None:
    for target in c.targets:
        matched = [test for test in now.outcomes if matches_target(test, target)]
        if not matched:
            c.targets_unmatched.append(target)
        for test in matched:
            (c.targets_passing if now.outcomes[test] in PASSING else c.targets_failing).append(test)
    c.targets_passing = sorted(set(c.targets_passing))
    c.targets_failing = sorted(set(c.targets_failing))


def _target_problems(c: TestComparison) -> list[str]:
    problems = []
    if c.targets_failing:
        problems.append(f"{len(c.targets_failing)} targeted test{_s(c.targets_failing)} "
                        f"do{'es' if len(c.targets_failing) == 1 else ''} not pass")
    if c.targets_unmatched:
        problems.append(f"no test ran for {', '.join(c.targets_unmatched)}")
    return problems


def matches_target(test: str, target: str) -> bool:
    """Whether `test` is `target` or lies under it.

    A target is a test id (`tests/test_x.py::test_y`, `pkg.tests.test_m.T.test_x`) or a
    prefix of one: a directory, a file, a class. A file path also matches dotted ids
    (unittest's) by its module name or any tail of it: `src/pkg/tests/test_m.py`
    matches `pkg.tests.test_m.T.test_x`.
    """
    target = target.strip().removeprefix("./").rstrip("/")
    if not target:
        return False
    if _under(test, target):
        return True
    if "/" in target or target.endswith(".py"):
        parts = target.removesuffix(".py").split("/")
        return any(_under(test, ".".join(parts[i:])) for i in range(len(parts)))
    return False


def _under(test: str, prefix: str) -> bool:
    return test == prefix or (test.startswith(prefix) and test[len(prefix)] in ":[/.")


def render_comparison(c: TestComparison, most: int = MOST_NAMES) -> str:
    """A few lines for prompts (test-fixer, reviewer) and reports."""
    lines = [f"Tests: {c.verdict} — {'; '.join(c.reasons)}."]
    if c.counts:
        lines.append("Now: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(c.counts.items())) + ".")
    categories = [
        (c.newly_failing, "newly failing (passed at base)"),
        (c.new_failing, "new tests failing"),
        (c.targets_failing, "targeted tests not passing"),
        (c.newly_skipped, "newly skipped or xfailed (they ran at base)"),
        (c.removed, "gone since base (ran then, absent now)"),
        (c.fixed, "fixed (failed at base, pass now)"),
        (c.new_passing, "new tests passing"),
    ]
    if c.pre_existing_failures:
        n = len(c.pre_existing_failures)
        lines.append(f"{n} failure{_s(c.pre_existing_failures)} {'were' if n != 1 else 'was'} already there at base "
                     f"and {'are' if n != 1 else 'is'} not yours to fix: {_names(c.pre_existing_failures, c, most)}.")
    for tests, label in categories:
        if tests:
            lines.append(f"{label[0].upper()}{label[1:]}: {_names(tests, c, most)}.")
    if c.targets_unmatched:
        lines.append(f"No test ran for the targets {', '.join(c.targets_unmatched)}.")
    return "\n".join(lines)


def _names(tests: list[str], c: TestComparison, most: int) -> str:
    shown = [f"{test} ({c.messages[test]})" if test in c.messages else test for test in tests[:most]]
    text = "; ".join(shown)
    return f"{text}; and {len(tests) - most} more" if len(tests) > most else text


def _verdict(c: TestComparison, verdict: Verdict, *reasons: str) -> TestComparison:
    c.verdict = verdict
    c.reasons = list(reasons)
    return c


def _s(items: Sequence[object]) -> str:
    return "" if len(items) == 1 else "s"


def _v(items: Sequence[object]) -> str:
    """The verb's ending agreeing with the count: 1 test fails, 2 tests fail."""
    return "s" if len(items) == 1 else ""
