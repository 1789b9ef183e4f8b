"""Grading one instance as SWE-bench does: the hidden tests on the finished work, in a sandbox.

The files the test patch touches are first put back as they were at the base commit
(an agent may have edited them, or written tests of its own there), then the patch is
applied and the FAIL_TO_PASS and PASS_TO_PASS tests run. The instance is resolved when
every one of them passes.

Test frameworks plug in as a `TestRunner`: the command that runs some test ids, and
the reading of its output into a status per id. `PytestRunner` covers pytest repos;
SWE-bench's django (tests/runtests.py) and sympy (bin/test) would each need a runner of
their own, passed to `EvalRunner(test_runner=...)`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from orchestrator.apps.evaluation.instances import Instance
from sandboxes.base import Sandbox, SandboxError
from sandboxes.git.command import WorkspaceError
from sandboxes.git.workspace import Workspace

# Statuses that count as passing, as in SWE-bench: an expected failure is fine.
PASSING = frozenset({"passed", "xfail"})
# Written in the workspace, not captured: a large suite's summary would be cut from the middle
# of the captured output, and a lost PASSED line would read as a failure.
LOG_FILE = ".shipyard-eval-tests.log"

SandboxFactory = Callable[[Path], AbstractContextManager[Sandbox]]


class TestRunner(Protocol):
    def command(self, test_ids: list[str]) -> str:
        """The shell command, run from the repo root, that runs (at least) these tests."""
        ...

    def parse(self, output: str) -> dict[str, str]:
        """Test id -> status (passed, failed, error, skipped, xfail, xpass) from the command's output."""
        ...


@dataclass(frozen=True)
class PytestRunner:
    """pytest on the test files of the ids, as SWE-bench runs them, reading the `-rA` summary."""

    python: str = "python3"

    def command(self, test_ids: list[str]) -> str:
        # Whole files, not node ids: pytest refuses to run anything when one id is not found.
        files = dict.fromkeys(test_id.split("::")[0] for test_id in test_ids)
        # Options every pytest since 3.x knows: SWE-bench's environments pin old versions too.
        return (f"{self.python} -m pytest -rA --tb=no -p no:cacheprovider --continue-on-collection-errors "
                f"{' '.join(shlex.quote(f) for f in files)}")

    def parse(self, output: str) -> dict[str, str]:
        return {m["id"]: _STATUS.get(m["status"], m["status"].lower()) for m in _SUMMARY_LINE.finditer(output)}


# `PASSED tests/test_x.py::test_a`, `FAILED tests/test_x.py::test_b[1 - 2] - AssertionError: ...`: an id
# has no spaces but in its parameters. (A skip reads `SKIPPED [1] tests/test_x.py:3: why`, with no id.)
_SUMMARY_LINE = re.compile(
    r"^(?P<status>PASSED|FAILED|FAIL|ERROR|XFAIL|XPASS|SKIPPED) (?P<id>[^\s\[]\S*?(?:\[[^\n]*?\])?)(?: - [^\n]*)?$",
    re.MULTILINE)
_STATUS = {"FAIL": "failed"}  # the word of old pytest versions


class Grade(BaseModel):
    resolved: bool
    fail_to_pass: dict[str, str]  # test id -> status; "missing" when the run did not report it
    pass_to_pass: dict[str, str]
    command: str | None
    exit_code: int | None = None
    seconds: float = 0.0
    problem: str | None = None  # why the tests could not run properly (patch did not apply, timeout)

    @property
    def f2p(self) -> str:
        """FAIL_TO_PASS tests passing, out of all, e.g. "1/2"."""
        return _score(self.fail_to_pass)

    @property
    def p2p(self) -> str:
        return _score(self.pass_to_pass)


def _score(statuses: dict[str, str]) -> str:
    return f"{sum(s in PASSING for s in statuses.values())}/{len(statuses)}"


def grade(instance: Instance, workspace: Workspace, sandbox: SandboxFactory, runner: TestRunner,
          timeout: float, log: Path) -> Grade:
    """Apply the hidden tests in `workspace` (the finished work, checked out) and run them; the
    whole test output goes to `log`."""
    workspace.restore(patched_paths(instance.test_patch), instance.base_commit)
    try:
        workspace.apply(instance.test_patch)
    except WorkspaceError as exc:
        return _statuses(instance, {}, None, problem=f"the test patch does not apply: {exc}")
    command = runner.command(instance.test_ids)
    with sandbox(workspace.path) as box:
        result = box.exec(f"{command} > {LOG_FILE} 2>&1", timeout=timeout)
        try:
            output = box.read_file(LOG_FILE).decode("utf-8", "replace")
        except SandboxError:  # the shell could not even create it
            output = result.output
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output)
    found = runner.parse(output)
    problem = None
    if result.timed_out:
        problem = f"the tests timed out after {timeout:g} s"
    elif not set(found) & set(instance.test_ids):
        # Most often an environment that cannot run the tests, or a repo whose tests are not pytest's.
        problem = f"the output names none of the tests (exit code {result.exit_code}); see {log}"
    graded = _statuses(instance, found, command, problem)
    return graded.model_copy(update={"exit_code": result.exit_code, "seconds": round(result.duration, 2)})


def _statuses(instance: Instance, found: dict[str, str], command: str | None, problem: str | None) -> Grade:
    f2p = {t: found.get(t, "missing") for t in instance.FAIL_TO_PASS}
    p2p = {t: found.get(t, "missing") for t in instance.PASS_TO_PASS}
    resolved = problem is None and all(s in PASSING for s in (*f2p.values(), *p2p.values()))
    return Grade(resolved=resolved, fail_to_pass=f2p, pass_to_pass=p2p, command=command, problem=problem)


_DIFF_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


def patched_paths(patch: str) -> list[str]:
    """The files a unified diff touches, both names of a rename."""
    return list(dict.fromkeys(path for pair in _DIFF_HEADER.findall(patch) for path in pair))
