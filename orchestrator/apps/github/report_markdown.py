"""A job's report as the body of a pull request or a comment: summary, subtasks, tests, verdicts, cost."""

from __future__ import annotations

from orchestrator.apps.github.status import plain
from orchestrator.engine.report import Report
from orchestrator.engine.state import TestRun

OUTPUT_TAIL = 3000
MOST_NAMED = 20
STATUS_WORDS = {"succeeded": "succeeded, verified by the tests", "unverified": "succeeded, unverified (no test "
                "checked it)", "partial": "partially succeeded (some subtasks failed)", "failed": "failed"}


def report_markdown(report: Report) -> str:
    lines = ["## Summary", plain(report.plan_summary, 2000) or "(no plan)",
             "", f"{report.diff_stat.summary()}."]
    if report.stop_reason:
        lines.append(f"Stopped: {plain(report.stop_reason, 500)}")
    lines += ["", "## Subtasks", "", "| Subtask | Status | Tests | Fix rounds | Review |", "|---|---|---|---|---|"]
    for sub in report.subtasks:
        tests = {True: "passed", False: "failing", None: "-"}[sub.tests_passed]
        status = sub.status + (f": {sub.reason}" if sub.reason else "")
        lines.append(f"| {_cell(sub.id + ' ' + sub.title)} | {_cell(status)} | {tests} | {sub.fix_rounds} | "
                     f"{_cell(sub.verdict or '-')} |")
    lines += ["", "## Tests", "", f"Outcome: **{STATUS_WORDS.get(report.status, report.status)}**."]
    if report.test_evidence:
        lines.append(f"Test command chosen from: {plain('; '.join(report.test_evidence), 600)}.")
    lines += ["", "| | Result | Command |", "|---|---|---|",
              f"| Before | {_result(report.tests_before)} | {_command(report.tests_before)} |",
              f"| After | {_result(report.tests_after)} | {_command(report.tests_after)} |"]
    after = report.tests_after
    if after is not None and after.comparison is not None and after.comparison.reasons:
        lines += ["", f"Against the base: {plain('; '.join(after.comparison.reasons), 600)}."]
    if report.pre_existing_failures:
        fixed = set(after.comparison.fixed) if after is not None and after.comparison is not None else set()
        shown = report.pre_existing_failures[:MOST_NAMED]
        more = len(report.pre_existing_failures) - len(shown)
        total = len(report.pre_existing_failures)
        lines += ["", f"Failing before this change ({total}; pre-existing, not caused by it):",
                  *(f"- `{_cell(test)}`" + (" — fixed now" if test in fixed else "") for test in shown),
                  *([f"- and {more} more"] if more else [])]
    if after is not None and after.passed is False:
        lines += ["", "<details><summary>Output of the failing tests</summary>", "", "```",
                  after.output[-OUTPUT_TAIL:].replace("```", "'''"), "```", "</details>"]
    lines += ["", "## Review verdicts", ""]
    for sub in report.subtasks:
        lines.append(f"- {sub.id}: {sub.verdict or 'no verdict'}")
        lines += [f"  - {plain(comment, 500)}" for comment in sub.review_comments]
    total = report.total
    lines += ["", "## Cost", "",
              f"{total.input_tokens + total.output_tokens} tokens ({total.input_tokens} in, {total.output_tokens} "
              f"out) in {total.calls} model calls, ${total.cost:.4f}, {report.seconds:.0f} s.",
              "", "| Agent | Role | Steps | Tokens | Cost | Time |", "|---|---|---|---|---|---|"]
    lines += [f"| {_cell(a.agent)} | {a.role} | {a.steps} | {a.tokens} | ${a.cost:.4f} | {a.seconds:.0f} s |"
              for a in report.agents]
    lines += ["", f"Job {report.job_id}, branch `{report.job_branch}`, {report.base_sha[:12]}..{report.head_sha[:12]}."]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return plain(text, 200).replace("|", "\\|")


def _result(run: TestRun | None) -> str:
    if run is None or run.command is None:
        return "no tests ran"
    return {True: "passed", False: "failing", None: "unverified"}[run.passed]


def _command(run: TestRun | None) -> str:
    return f"`{_cell(run.command)}`" if run is not None and run.command else "-"
