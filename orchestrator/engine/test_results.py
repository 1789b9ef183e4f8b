"""Running a test suite so that its per-test results can be read back, and reading them.

A run writes into `.shipyard/test-results/` in the workspace: the only place a later
read_file sees (bubblewrap gives every exec a fresh /tmp; the docker container's /tmp is
its own). That directory holds a `.gitignore` of `*`, as pytest's cache does, so nothing
in it is ever committed or shows in `git status`, without touching the repository's own
ignore files. The whole output goes to a log there and is read back from the host, so
parsing sees all of it however long it is, also after a timeout; the output kept in the
report is capped as a command's output is, with the lines of passing tests left out (the
failures are what a reader wants).

What is read back, by the command's `reports`:
- junit-xml (pytest): `--junitxml` with `junit_family=xunit1`, whose `file` attribute
  turns test cases back into pytest node ids (`tests/test_x.py::TestY::test_z[1]`);
  `--continue-on-collection-errors`, so a module that cannot be imported at base (a
  missing optional dependency) is one failing entry, not a run with no results; and
  `-rA`, whose short summary is read when the XML is missing or unreadable.
- unittest-verbose: `-v` lines (`test_x (pkg.tests.test_m.T.test_x) ... ok`) and the
  `FAIL:`/`ERROR:` headers of the failure details; ids are dotted (`pkg.tests.test_m.T.test_x`).
- cargo-libtest: `test a::b ... ok` lines, each id prefixed by the test binary's source
  (`src/lib.rs::a::b`, `tests/api.rs::c`, `doc-tests calc::src/lib.rs - add (line 3)`).
- exit-code: the exit code only (npm, go, make, anything unrecognised).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import ClassVar, Literal, cast
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import BaseModel, ConfigDict, Field

from agents.test_discovery import TestCommand
from sandboxes.base import Sandbox, SandboxError, cap_output

RESULTS_DIR = ".shipyard/test-results"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")
# A one-line reason per failing test is kept, this long at most.
MESSAGE_CHARS = 200

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
FAILING: frozenset[str] = frozenset({"failed", "error"})
PASSING: frozenset[str] = frozenset({"passed", "xpassed"})
# Worst first: when one id is reported twice (a test failing, then its teardown erroring), the worst wins.
SEVERITY: tuple[Outcome, ...] = ("error", "failed", "xpassed", "passed", "xfailed", "skipped")
ResultSource = Literal["junit-xml", "pytest-summary", "unittest-verbose", "cargo-libtest", "exit-code", "not-run"]

PYTEST_OPTIONS = ' --junitxml="$SHIPYARD_RESULTS/{name}.xml" -o junit_family=xunit1 -rA --continue-on-collection-errors'
PASSING_LINES: dict[str, re.Pattern[str]] = {
    "junit-xml": re.compile(r"^PASSED \S"),
    "pytest-summary": re.compile(r"^PASSED \S"),
    "unittest-verbose": re.compile(r" \.\.\. ok$"),
    "cargo-libtest": re.compile(r"^test .* \.\.\. ok$"),
}


class TestReport(BaseModel):
    """One run of a suite: per-test outcomes when they could be read, and always the exit code."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    command: str | None
    exit_code: int | None = None
    timed_out: bool = False
    source: ResultSource = Field(description="where the outcomes come from; exit-code and not-run have none")
    outcomes: dict[str, Outcome] = Field(default_factory=dict, description="test id -> outcome")
    messages: dict[str, str] = Field(default_factory=dict, description="failing test id -> a one-line reason")
    output: str = ""
    seconds: float = 0.0
    note: str | None = Field(None, description="why results are missing or partial, when they are")
    reused_from: str | None = Field(None, description="the earlier run of the job whose results these are: it "
                                    "tested the same files with the same command (see tested_trees)")

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(self.outcomes.values()))

    @property
    def per_test(self) -> bool:
        return self.source not in ("exit-code", "not-run")

    @property
    def ok(self) -> bool:
        """The suite's own verdict: it ran to the end and exited 0."""
        return self.exit_code == 0 and not self.timed_out

    def with_outcome(self, *outcomes: str) -> list[str]:
        return sorted(test for test, outcome in self.outcomes.items() if outcome in outcomes)


class ParsedResults(BaseModel):
    outcomes: dict[str, Outcome] = Field(default_factory=dict)
    messages: dict[str, str] = Field(default_factory=dict)

    def add(self, test: str, outcome: Outcome, message: str = "") -> None:
        old = self.outcomes.get(test)
        if old is None or SEVERITY.index(outcome) < SEVERITY.index(old):
            self.outcomes[test] = outcome
        if outcome in FAILING and message and test not in self.messages:
            self.messages[test] = _one_line(message)


def not_run(reason: str) -> TestReport:
    """The report of a suite that could not run at all (no test command)."""
    return TestReport(command=None, source="not-run", note=reason)


def instrumented_command(test: TestCommand, name: str) -> str:
    """The shell script the harness runs: the test command with its reporting options, output to a log.

    The results directory is fixed before the command runs, so a command that changes
    directory (`cd backend && pytest`) still writes where it is read back; the
    subshell's newlines keep a trailing comment in the command from swallowing them.
    """
    _check_name(name)
    extra = {"junit-xml": PYTEST_OPTIONS.format(name=name), "unittest-verbose": " -v"}.get(test.reports, "")
    return f'SHIPYARD_RESULTS="$PWD/{RESULTS_DIR}"\n(\n{test.command}{extra}\n) > "$SHIPYARD_RESULTS/{name}.log" 2>&1'


def run_suite(sandbox: Sandbox, test: TestCommand, name: str = "tests", timeout: float | None = None) -> TestReport:
    """Run the suite in `sandbox` and read its results back; `name` keeps runs in one workspace apart."""
    _check_name(name)
    log_path, junit_path = f"{RESULTS_DIR}/{name}.log", f"{RESULTS_DIR}/{name}.xml"
    sandbox.write_file(f"{RESULTS_DIR}/.gitignore", "*\n")
    for path in (log_path, junit_path):
        sandbox.write_file(path, b"")  # what an earlier run left is never read back as this one's
    result = sandbox.exec(instrumented_command(test, name), timeout=timeout)
    log = _read_log(sandbox, log_path) or result.output
    source, parsed, note = _parse(test, _read_bytes(sandbox, junit_path), log)
    if result.timed_out:
        note = f"the run was stopped after {result.duration:.0f} s" + (f"; {note}" if note else "")
    output, _ = cap_output(_without_passing_lines(log, source), sandbox.spec.limits.output_limit)
    return TestReport(
        command=test.command, exit_code=result.exit_code, timed_out=result.timed_out, source=source,
        outcomes=parsed.outcomes, messages=parsed.messages, output=output, seconds=round(result.duration, 2),
        note=note,
    )


def _parse(test: TestCommand, junit: bytes, log: str) -> tuple[ResultSource, ParsedResults, str | None]:
    if test.reports == "junit-xml":
        parsed = parse_junit_xml(junit) if junit.strip() else None
        if parsed is not None:
            return "junit-xml", parsed, None
        summary = parse_pytest_summary(log)
        why = "no JUnit XML was written" if not junit.strip() else "the JUnit XML could not be read"
        if summary is not None:
            return "pytest-summary", summary, f"{why}: outcomes from pytest's short summary (skips by location)"
        return "exit-code", ParsedResults(), f"{why} and pytest printed no short summary: the exit code only"
    parser = {"unittest-verbose": parse_unittest_verbose, "cargo-libtest": parse_cargo_libtest}.get(test.reports)
    if parser is None:
        return "exit-code", ParsedResults(), None
    parsed = parser(log)
    if parsed is None:
        return "exit-code", ParsedResults(), f"no per-test results in the {test.runner} output: the exit code only"
    return cast(ResultSource, test.reports), parsed, None


# --- parsers ----------------------------------------------------------------------------------


def parse_junit_xml(data: bytes) -> ParsedResults | None:
    """Outcomes from a JUnit XML report (pytest, jest-junit, go-junit-report…); None if it is not one."""
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException, ValueError):
        return None
    if root.tag not in ("testsuites", "testsuite"):
        return None
    parsed = ParsedResults()
    for case in root.iter("testcase"):
        test = _junit_id(case.get("classname", ""), case.get("name", ""), case.get("file"))
        error, failure, skipped = case.find("error"), case.find("failure"), case.find("skipped")
        if error is not None:
            parsed.add(test, "error", _junit_reason(error))
        elif failure is not None:
            parsed.add(test, "failed", _junit_reason(failure))
        elif skipped is not None:
            parsed.add(test, "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped")
        else:
            parsed.add(test, "passed")
    return parsed


def _junit_reason(element: Element) -> str:
    """The message, or for pytest's bare "collection failure" the error line (`E   ...`) of its details."""
    message = element.get("message") or ""
    errors = [line[1:].strip() for line in (element.text or "").splitlines() if line.startswith("E ")]
    if errors and message in ("", "collection failure"):
        return errors[-1]
    return message or element.text or ""


def _junit_id(classname: str, name: str, file: str | None) -> str:
    """pytest's node id when the case says its file (xunit1), else `classname::name`."""
    if file and file.endswith(".py"):
        module = file[:-3].replace("/", ".")
        if not classname and name == module:
            return file  # the module itself: it failed to import
        if classname == module:
            return f"{file}::{name}"
        if classname.startswith(f"{module}."):
            return f"{file}::{classname[len(module) + 1:].replace('.', '::')}::{name}"
    return f"{classname}::{name}" if classname else name


SUMMARY_HEADER = re.compile(r"^=+ short test summary info =+$", re.MULTILINE)
# A node id has no spaces but in its parameters (`test_x[a b]`); pytest 7 writes "XPASS id reason",
# pytest 8 "XPASS id - reason".
SUMMARY_LINE = re.compile(
    r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (?P<id>[^\s\[]+(?:\[[^\]]*\])?)(?:\s+(?:- )?(?P<msg>.*))?$")
SUMMARY_SKIP = re.compile(r"^SKIPPED \[\d+\] (?P<where>[^\s:]+:\d+)")
SUMMARY_OUTCOMES: dict[str, Outcome] = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error",
                                        "XFAIL": "xfailed", "XPASS": "xpassed"}


def parse_pytest_summary(text: str) -> ParsedResults | None:
    """Outcomes from pytest's `-rA` short summary; skips are named by location (`tests/t.py:12`)."""
    headers = list(SUMMARY_HEADER.finditer(text))
    if not headers:
        return None
    parsed = ParsedResults()
    for line in text[headers[-1].end():].splitlines():
        if line.startswith(("=", "!")):
            break
        match = SUMMARY_LINE.match(line)
        if match:
            parsed.add(match["id"], SUMMARY_OUTCOMES[match[1]], match["msg"] or "")
        elif skip := SUMMARY_SKIP.match(line):
            parsed.add(skip["where"], "skipped")
    return parsed


UNITTEST_CASE = re.compile(r"^\s*(?P<name>[\w.]+) \((?P<where>[\w.]+)\)(?: \(.*\))?(?: \.\.\. (?P<status>.*))?$")
UNITTEST_STATUS = re.compile(r" \.\.\. (?P<status>ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)$")
UNITTEST_PROBLEM = re.compile(r"^(?P<kind>FAIL|ERROR|UNEXPECTED SUCCESS): (?P<name>[\w.]+) \((?P<where>[\w.]+)\)")
UNITTEST_RAN = re.compile(r"^Ran \d+ tests? in ", re.MULTILINE)


def parse_unittest_verbose(text: str) -> ParsedResults | None:
    """Outcomes from `python -m unittest -v` output; tests with no status of their own passed if the run ended."""
    lines = text.splitlines()
    statuses: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = UNITTEST_CASE.match(line)
        if not match:
            continue
        test = _unittest_id(match["name"], match["where"])
        status = match["status"]
        if not status and index + 1 < len(lines) and (after := UNITTEST_STATUS.search(lines[index + 1])):
            status = after["status"]  # a docstring's first line comes between the name and the status
        if status or test not in statuses:
            statuses[test] = (status or "").strip()
    ended = UNITTEST_RAN.search(text) is not None
    if not statuses and not ended:
        return None
    parsed = ParsedResults()
    for index, line in enumerate(lines):
        if problem := UNITTEST_PROBLEM.match(line):
            test = _unittest_id(problem["name"], problem["where"])
            reason = "unexpected success" if problem["kind"] == "UNEXPECTED SUCCESS" else _unittest_reason(lines, index)
            parsed.add(test, "error" if problem["kind"] == "ERROR" else "failed", reason)
    for test, status in statuses.items():
        if status.startswith("skipped"):
            parsed.add(test, "skipped")
        elif status == "expected failure":
            parsed.add(test, "xfailed")
        elif status in ("FAIL", "unexpected success"):
            parsed.add(test, "failed")
        elif status == "ERROR":
            parsed.add(test, "error")
        elif status == "ok" or ended:
            parsed.add(test, "passed")
    return parsed


def _unittest_reason(lines: list[str], header: int) -> str:
    """The last line of a failure's details (the exception), which end at the next rule of = or -."""
    reason = ""
    for line in lines[header + 2:]:
        if line.startswith(("=" * 10, "-" * 10)):
            break
        reason = line.strip() or reason
    return reason


def _unittest_id(name: str, where: str) -> str:
    if where.startswith("unittest."):
        return name  # unittest.loader._FailedTest: a module that could not be imported
    return where if where.endswith(f".{name}") else f"{where}.{name}"


CARGO_BINARY = re.compile(r"^\s*(?:Running (?:unittests )?(?P<source>\S+)|Doc-tests (?P<crate>\S+))")
CARGO_RUNNING = re.compile(r"^running \d+ tests?$", re.MULTILINE)
CARGO_TEST = re.compile(r"^test (?P<name>.+?) \.\.\. (?P<status>ok|FAILED|ignored)\b")
CARGO_OUTCOMES: dict[str, Outcome] = {"ok": "passed", "FAILED": "failed", "ignored": "skipped"}


def parse_cargo_libtest(text: str) -> ParsedResults | None:
    """Outcomes from `cargo test` output (libtest's default format)."""
    if not CARGO_RUNNING.search(text):
        return None
    parsed = ParsedResults()
    binary = ""
    for line in text.splitlines():
        if header := CARGO_BINARY.match(line):
            binary = header["source"] or f"doc-tests {header['crate']}"
        elif case := CARGO_TEST.match(line):
            test = f"{binary}::{case['name']}" if binary else case["name"]
            parsed.add(test, CARGO_OUTCOMES[case["status"]])
    return parsed


# --- helpers ----------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not RUN_NAME.fullmatch(name):
        raise ValueError(f"test run name {name!r}: use letters, digits, '.', '_' and '-' only")


def _read_bytes(sandbox: Sandbox, path: str) -> bytes:
    try:
        return sandbox.read_file(path)
    except (SandboxError, OSError):
        return b""


def _read_log(sandbox: Sandbox, path: str) -> str:
    try:
        return sandbox.read_file(path).decode("utf-8", errors="replace")
    except SandboxError:
        # Larger than a file read returns: its tail holds the runner's summary.
        tail = sandbox.exec(["tail", "-c", str(4 * sandbox.spec.limits.output_limit), path])
        return f"[the start of the output is left out: the log is too large]\n{tail.stdout}"
    except OSError:
        return ""


def _without_passing_lines(log: str, source: ResultSource) -> str:
    pattern = PASSING_LINES.get(source)
    lines = log.splitlines()
    passing = [index for index, line in enumerate(lines) if pattern and pattern.search(line)]
    if not passing:
        return log
    first, dropped = passing[0], set(passing)
    note = f"[{len(passing)} lines of passing tests left out]"
    return "\n".join(note if i == first else line for i, line in enumerate(lines) if i == first or i not in dropped)


def _one_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= MESSAGE_CHARS else f"{line[: MESSAGE_CHARS - 1]}…"
