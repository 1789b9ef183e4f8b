"""The suite runs of one job by the files they tested, so that the same files are not tested twice.

A subtask merged alone leaves the job branch with exactly the files its tests ran on; a test-fixer or
coder that changed nothing leaves the files as they were tested. Running a real suite again there costs
its whole time (minutes, on a real project) and can tell nothing new but a flaky test's other answer,
which would only make two verdicts on the same files disagree. A run is known by the files' tree, the
command and how its results are read; the job's sandboxes all start from the same environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from agents.test_discovery import TestCommand
from orchestrator.engine.test_results import TestReport


@dataclass
class TestedTrees:
    """Reports of the runs so far, by (tree, command, report format); shared by a job's parallel subtasks."""

    __test__ = False  # not a pytest test class, whatever its name

    _reports: dict[tuple[str, str, str], TestReport] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, tree: str, test: TestCommand) -> TestReport | None:
        """The report of an earlier run on these files, as this run's: it took no time and says whose it is."""
        with self._lock:
            report = self._reports.get((tree, test.command, test.reports))
        return report.model_copy(update={"seconds": 0.0}) if report is not None else None

    def add(self, tree: str, test: TestCommand, name: str, report: TestReport) -> None:
        """Keep a run that finished; one stopped by its timeout (a busy machine) or left without an exit code
        says nothing of the files, and the next run on them runs."""
        if report.timed_out or report.exit_code is None:
            return
        with self._lock:
            self._reports.setdefault((tree, test.command, test.reports),
                                     report.model_copy(update={"reused_from": name}))
