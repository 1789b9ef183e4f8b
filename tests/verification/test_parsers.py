"""Reading results back: JUnit XML of several producers, pytest's summary, unittest's verbose output."""

from __future__ import annotations

from pathlib import Path

import pytest
import realrepos

from agents.test_discovery import describe_test_command
from orchestrator.engine.test_results import (
    RESULTS_DIR,
    instrumented_command,
    parse_cargo_libtest,
    parse_junit_xml,
    parse_pytest_summary,
    parse_unittest_verbose,
    run_suite,
)
from sandboxes.base import SandboxSpec
from sandboxes.local import LocalBackend

EVERY_OUTCOME = """\
import pytest


def test_pass():
    pass


def test_fail():
    assert 1 == 2


@pytest.mark.skip(reason="not today")
def test_skip():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert 0


@pytest.mark.xfail(reason="fixed meanwhile")
def test_xpass():
    pass


@pytest.mark.parametrize("text", ["a b", "c - d"])
def test_param(text):
    assert text != "c - d"


class TestGroup:
    class TestInner:
        def test_nested(self):
            pass


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


def test_setup_error(broken):
    pass
"""


@pytest.mark.skipif(not realrepos.system_pytest_available(), reason="/usr/bin/python3 has no pytest")
def test_junit_and_summary_of_one_pytest_run_agree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    realrepos.write(repo, {"tests/test_every.py": EVERY_OUTCOME, "tests/test_broken.py": "import no_such_module\n"})
    with LocalBackend().start(SandboxSpec(workspace=repo)) as sandbox:
        report = run_suite(sandbox, describe_test_command("python3 -m pytest", "test"), "every")
    every = "tests/test_every.py"
    expected = {
        "tests/test_broken.py": "error", f"{every}::test_pass": "passed", f"{every}::test_fail": "failed",
        f"{every}::test_xfail": "xfailed", f"{every}::test_param[a b]": "passed",
        f"{every}::test_param[c - d]": "failed", f"{every}::TestGroup::TestInner::test_nested": "passed",
        f"{every}::test_setup_error": "error",
    }
    assert report.outcomes == {**expected, f"{every}::test_skip": "skipped", f"{every}::test_xpass": "passed"}
    assert report.messages[f"{every}::test_setup_error"] == 'failed on setup with "RuntimeError: fixture broke"'
    assert report.messages["tests/test_broken.py"] == "ModuleNotFoundError: No module named 'no_such_module'"
    summary = parse_pytest_summary((repo / RESULTS_DIR / "every.log").read_text())
    assert summary is not None
    # The same ids; the summary names skips by place and knows an xpass for what it is.
    assert summary.outcomes == {**expected, f"{every}:12": "skipped", f"{every}::test_xpass": "xpassed"}


def test_junit_of_other_producers() -> None:
    jest = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1">
  <testsuite name="cart" tests="3">
    <testcase classname="cart adds items" name="cart adds items" time="0.01"/>
    <testcase classname="cart totals" name="cart totals" time="0.01">
      <failure message="expected 11, received 10">Error: expected 11...</failure>
    </testcase>
    <testcase classname="cart later" name="cart later"><skipped/></testcase>
  </testsuite>
</testsuites>"""
    parsed = parse_junit_xml(jest)
    assert parsed is not None
    assert parsed.outcomes == {"cart adds items::cart adds items": "passed", "cart totals::cart totals": "failed",
                               "cart later::cart later": "skipped"}
    assert parsed.messages == {"cart totals::cart totals": "expected 11, received 10"}
    go = b"""<testsuite name="example.com/calc" tests="2"><testcase classname="calc" name="TestAdd"/>
<testcase classname="calc" name="TestDiv"><error>panic: division by zero
goroutine 1</error></testcase></testsuite>"""
    parsed = parse_junit_xml(go)
    assert parsed is not None
    assert parsed.outcomes == {"calc::TestAdd": "passed", "calc::TestDiv": "error"}
    assert parsed.messages == {"calc::TestDiv": "panic: division by zero"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml at all",
        b"<html><body>a page</body></html>",
        b"<testsuites><testcase name='x'>",  # cut short, as by a killed run
        # An entity bomb and an external entity are refused, not expanded.
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><testsuites><testcase name="&c;"/></testsuites>',
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<testsuites><testcase name="&x;"/></testsuites>',
    ],
)
def test_what_is_not_junit_xml(data: bytes) -> None:
    assert parse_junit_xml(data) is None


def test_an_empty_report_is_per_test_with_no_tests() -> None:
    parsed = parse_junit_xml(b'<testsuites><testsuite name="pytest" tests="0"/></testsuites>')
    assert parsed is not None and parsed.outcomes == {}


def test_the_summary_is_read_only_after_its_header() -> None:
    text = ("PASSED tests/fake.py::printed_by_a_test\n"
            "==== short test summary info ====\n"
            "PASSED tests/t.py::test_a\n"
            "XPASS tests/t.py::test_b reason of pytest 7\n"
            "XPASS tests/t.py::test_c - reason of pytest 8\n"
            "FAILED tests/t.py::test_d[x - y] - AssertionError: no\n"
            "SKIPPED [2] tests/t.py:40: later\n"
            "==== 1 failed, 1 passed in 0.1s ====\n"
            "PASSED tests/after.py::not_a_result\n")
    parsed = parse_pytest_summary(text)
    assert parsed is not None
    assert parsed.outcomes == {"tests/t.py::test_a": "passed", "tests/t.py::test_b": "xpassed",
                               "tests/t.py::test_c": "xpassed", "tests/t.py::test_d[x - y]": "failed",
                               "tests/t.py:40": "skipped"}
    assert parsed.messages == {"tests/t.py::test_d[x - y]": "AssertionError: no"}
    assert parse_pytest_summary("no summary here") is None


UNITTEST_EVERY_OUTCOME = """\
import unittest


class Everything(unittest.TestCase):
    def test_ok(self):
        pass

    def test_documented(self):
        \"\"\"Has a docstring, printed by -v.\"\"\"
        print("and output of its own")

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise ValueError("bad value")

    @unittest.skip("not today")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_unexpected_success(self):
        pass

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)
"""


def test_unittest_verbose_of_a_real_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    realrepos.write(repo, {"tests/__init__.py": "", "tests/test_every.py": UNITTEST_EVERY_OUTCOME,
                           "tests/test_broken.py": "import no_such_module\n"})
    with LocalBackend().start(SandboxSpec(workspace=repo)) as sandbox:
        report = run_suite(sandbox, describe_test_command("python3 -m unittest discover -s tests -t .", "test"), "u")
    every = "tests.test_every.Everything"
    assert report.source == "unittest-verbose"
    assert report.outcomes == {
        "tests.test_broken": "error", f"{every}.test_ok": "passed", f"{every}.test_documented": "passed",
        f"{every}.test_fail": "failed", f"{every}.test_error": "error", f"{every}.test_skip": "skipped",
        f"{every}.test_expected_failure": "xfailed", f"{every}.test_unexpected_success": "failed",
        f"{every}.test_subtests": "failed",
    }
    assert report.messages == {
        "tests.test_broken": "ModuleNotFoundError: No module named 'no_such_module'",
        f"{every}.test_fail": "AssertionError: 1 != 2", f"{every}.test_error": "ValueError: bad value",
        f"{every}.test_unexpected_success": "unexpected success", f"{every}.test_subtests": "AssertionError: 1 == 1",
    }


def test_text_parsers_need_their_runners_output() -> None:
    assert parse_unittest_verbose("Traceback (most recent call last):\nSyntaxError: bad\n") is None
    assert parse_cargo_libtest("error[E0425]: cannot find value `x` in this scope\n") is None


def test_the_instrumented_command() -> None:
    pytest_command = instrumented_command(describe_test_command("cd api && python3 -m pytest -x", "t"), "base")
    assert pytest_command == (
        'SHIPYARD_RESULTS="$PWD/.shipyard/test-results"\n(\ncd api && python3 -m pytest -x'
        ' --junitxml="$SHIPYARD_RESULTS/base.xml" -o junit_family=xunit1 -rA --continue-on-collection-errors\n)'
        ' > "$SHIPYARD_RESULTS/base.log" 2>&1'
    )
    with pytest.raises(ValueError, match="test run name '../x': use letters, digits"):
        instrumented_command(describe_test_command("make test", "t"), "../x")
