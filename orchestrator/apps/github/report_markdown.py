"""A job's report as the body of a pull request or a comment: summary, subtasks, tests, verdicts, cost."""

from __future__ import annotations

from orchestrator.apps.github.status import plain
from orchestrator.engine.report import Report
from orchestrator.engine.state import TestRun

OUTPUT_TAIL = 3000


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
    lines += ["", "## Tests", "", "| | Result | Command |", "|---|---|---|",
              f"| Before | {_result(report.tests_before)} | {_command(report.tests_before)} |",
              f"| After | {_result(report.tests_after)} | {_command(report.tests_after)} |"]
    after = report.tests_after
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
    if run is None or run.passed is None:
        return "no test command"
    return "passed" if run.passed else "failing"


def _command(run: TestRun | None) -> str:
    return f"`{_cell(run.command)}`" if run is not None and run.command else "-"
