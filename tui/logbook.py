"""The live logs of a job: each event as one or a few lines, kept per scope in a bounded window.

A scope is the whole job, one subtask or one agent. Each keeps only its last `window`
lines, and only the most recently active agents keep a log at all, so following a job
of any length holds the TUI's memory flat.

A line is a tuple of (text, style) spans, not a rich Text: a job may log thousands of
lines a second, and only the few on screen are ever rendered. The lines of one command's
step end with a key span (style `@<event id>`): the view expands that step to its whole
output, which the book keeps for the latest `details` steps.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Any

from orchestrator.store.events import (
    AgentCommit,
    AgentCondensed,
    AgentFinished,
    AgentMessage,
    AgentToolResult,
    CandidateChosen,
    DirectorAnswer,
    DirectorNote,
    Event,
    JobAccepted,
    JobDiscarded,
    JobFinished,
    JobPrepared,
    JobStatusChanged,
    JobSubmitted,
    JobWaiting,
    MergeDone,
    Notice,
    PlanApproved,
    PlanEdited,
    PlanReady,
    PlanRejected,
    ReviewGiven,
    SubtaskStatus,
    TestResult,
)
from tui.format import ICON, STYLE, duration, first_line, label, money, short, tokens

Span = tuple[str, str]  # text, style
Line = tuple[Span, ...]

LOG_WINDOW = 2000
AGENT_LOGS = 64  # agents whose logs are kept; the least recently active beyond these are dropped
JOB = "job"
INDENT: Span = (" " * 9, "")
# Tools whose output the log leaves out: it is a file's text, or an answer shown elsewhere.
QUIET_TOOLS = frozenset({"view_file", "submit", "submit_plan", "submit_review"})
OUTPUT_HEAD = 2  # lines of a command's output shown from its start
OUTPUT_TAIL = 3  # and from its end
DETAILS = 256  # steps whose whole output is kept for expanding
DETAIL_LINES = 400  # at most this many lines of one output (its head and tail) when expanded
KEY = "@"  # the style of a span that names the step a line belongs to; never rendered


def step_key(line: Line) -> str | None:
    """The step a line belongs to, if it can be expanded."""
    last = line[-1] if line else None
    return last[1][1:] if last and last[1].startswith(KEY) else None


def scopes_of(event: Event) -> list[str]:
    """The scopes an event is logged in: always the job's, and its subtask's and agent's."""
    found = [JOB]
    if event.subtask:
        found.append(f"subtask:{event.subtask}")
    if event.agent:
        found.append(f"agent:{event.agent}")
    return found


class LogBook:
    def __init__(self, window: int = LOG_WINDOW, agent_logs: int = AGENT_LOGS):
        self.window = window
        self.agent_logs = agent_logs
        self._lines: dict[str, deque[Line]] = {}
        self._agents: OrderedDict[str, None] = OrderedDict()  # least recently active first
        self._dropped: set[str] = set()
        self._details: OrderedDict[str, list[Line]] = OrderedDict()

    def details(self, key: str) -> list[Line] | None:
        """A step's whole output (without time and author), while the book still has it."""
        return self._details.get(key)

    def add(self, event: Event) -> dict[str, list[Line]]:
        """Log the event; the new lines of each scope it belongs to."""
        bodies = event_lines(event)
        if not bodies:
            return {}
        if isinstance(event, AgentToolResult) and event.tool not in QUIET_TOOLS and event.id is not None:
            key: Span = ("", f"{KEY}{event.id}")
            full = _output_lines(event.output, DETAIL_LINES)
            if len(full) > len(bodies) - 1:  # there is more to see than the step shows
                self._details[str(event.id)] = [(INDENT, *line, key) for line in full]
                while len(self._details) > DETAILS:
                    self._details.popitem(last=False)
                bodies = [(*body, key) for body in bodies]
        clock: Span = (time.strftime("%H:%M:%S ", time.localtime(event.ts)), "dim")
        rest = [(INDENT, *body) for body in bodies[1:]]
        own = [(clock, *bodies[0]), *rest]
        who = event.agent or event.subtask
        # The job's and a subtask's logs say who did it; an agent's own log need not.
        shared = [(clock, (f"{who} ", "bold"), *bodies[0]), *rest] if who else own
        added: dict[str, list[Line]] = {}
        for scope in scopes_of(event):
            lines = own if scope.startswith("agent:") else shared
            if scope.startswith("agent:"):
                self._keep_agent(scope)
            self._lines.setdefault(scope, deque(maxlen=self.window)).extend(lines)
            added[scope] = lines
        return added

    def lines(self, scope: str) -> list[Line]:
        if scope in self._dropped and scope not in self._lines:
            note = (f"This agent's log left memory: {len(self._agents)} agents were active since. "
                    "`shipyard logs` prints every event.")
            return [((note, "dim"),)]
        return list(self._lines.get(scope, ()))

    def _keep_agent(self, scope: str) -> None:
        self._agents[scope] = None
        self._agents.move_to_end(scope)
        while len(self._agents) > self.agent_logs:
            oldest, _ = self._agents.popitem(last=False)
            self._lines.pop(oldest, None)
            self._dropped.add(oldest)


def status_span(status: str) -> Span:
    return (f"{ICON.get(status, '•')} {label(status)}", STYLE.get(status, ""))


def event_lines(event: Event) -> list[Line]:
    """What the log shows of an event (without time and author); nothing for events that only
    repeat another's content."""
    match event:
        case AgentMessage():
            content = event.content.strip()
            return [(("» " + first_line(content, 200), "italic"),)] if content else []  # calls show with results
        case AgentToolResult():
            call: Line = (("▸ ", "cyan"), (event.tool, "bold"), (" " + _arguments(event.arguments), ""))
            if not event.ok:
                call += ((" ✗", "red"),)
            if event.tool in QUIET_TOOLS:
                return [call]
            return [call, *_output_lines(event.output)]
        case AgentFinished():
            spent = event.usage.input_tokens + event.usage.output_tokens
            why = "" if event.status == "submitted" else f" · {short(event.reason, 120)}"
            summary = (f" after {event.steps} steps · {tokens(spent)} tok · {money(event.usage.cost)} · "
                       f"{duration(event.seconds)}{why}")
            return [(status_span(event.status), (summary, ""))]
        case AgentCommit():
            return [(("● ", "cyan"), (f"committed {event.head[:10]}", ""))]
        case AgentCondensed():
            return [(("⇣ ", "cyan"), (f"history condensed {event.why}: {tokens(event.tokens_before)} → "
                                      f"{tokens(event.tokens_after)} tok of a {tokens(event.window)} window", "dim"))]
        case SubtaskStatus():
            reason = f" · {short(event.reason, 160)}" if event.reason else ""
            return [(status_span(event.status), (reason, "red"))]
        case TestResult():
            lines = [_test_line(event)]
            if event.passed is False:
                tail = [line for line in event.output.strip().splitlines() if line.strip()][-3:]
                lines += [(("└ " + short(line, 160), "dim"),) for line in tail]
            return lines
        case ReviewGiven():
            lines = [(status_span(event.decision), (" " + short(event.summary, 200), ""))]
            return lines + [(("- " + short(comment, 200), "yellow"),) for comment in event.comments]
        case MergeDone(ok=True):
            return [(("⇢ ", "green"), (f"merged {event.branch} into the job branch", ""))]
        case MergeDone():
            return [(("⇢ ", "red"), (f"conflicts in {', '.join(event.conflicts)}", ""))]
        case PlanReady():
            return [(("plan ready: ", "bold"),
                     (f"{len(event.plan.subtasks)} subtasks · {short(event.plan.summary, 160)}", ""))]
        case JobStatusChanged() | JobFinished():
            error = getattr(event, "error", None)
            return [(("job ", ""), status_span(event.status), (f" · {short(error, 160)}" if error else "", "red"))]
        case JobPrepared():
            before = {True: "pass", False: "fail", None: "none"}[event.tests_before]
            return [((f"prepared {event.job_branch} at {event.base_sha[:10]} · tests before: {before}", ""),)]
        case JobSubmitted():
            return [(("submitted: ", "bold"), (short(event.task.instruction, 200), ""))]
        case JobWaiting():
            return [(("waiting for the director's approval of the plan", "yellow bold"),)]
        case DirectorAnswer():
            reason = f": {short(event.reason, 160)}" if event.reason else ""
            return [((f"answer: {event.action}", "bold"), (reason, ""))]
        case PlanApproved():
            return [(("plan approved", "bold"),)]
        case PlanEdited():
            return [(("plan edited", "bold"),)]
        case PlanRejected():
            return [(("plan rejected", "bold"), (f": {short(event.reason, 160)}" if event.reason else "", ""))]
        case Notice():
            return [(("notice: ", "yellow bold"), (short(event.text, 200), ""))]
        case DirectorNote():
            return [(("note: ", "magenta bold"), (short(event.text, 200), ""))]
        case JobAccepted():
            return [(("accepted: ", "green bold"), (short(event.message, 160), ""))]
        case JobDiscarded():
            return [(("discarded: ", "bold"), (f"deleted {', '.join(event.branches) or 'no branches'}", ""))]
        case CandidateChosen():
            return [(("candidate chosen: ", "bold"), (f"{event.winner} of {len(event.scores)}", ""))]
    return [((event.kind, "cyan"), (" " + short(event.payload, 160), ""))]


def _output_lines(output: str, most: int = OUTPUT_HEAD + OUTPUT_TAIL) -> list[Line]:
    """A command's output in at most `most` lines: its head and its tail, where the verdict of a test run
    or a compiler is, and how much lies between (enter expands it)."""
    lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
    if len(lines) <= most:
        shown = lines
    else:
        tail = max(1, most - most * OUTPUT_HEAD // (OUTPUT_HEAD + OUTPUT_TAIL))
        head = most - tail
        hidden = len(lines) - head - tail
        shown = [*lines[:head], f"… {hidden} more lines (enter shows them)", *lines[-tail:]]
    if most == OUTPUT_HEAD + OUTPUT_TAIL:
        return [(("└ " + short(line, 160), "dim"),) for line in shown]
    # Expanded, the lines keep their indentation (a traceback's) and wrap in the view.
    return [(("│ " + line.expandtabs(4)[:2000], "dim"),) for line in shown]


def _test_line(event: TestResult) -> Line:
    scope = "job tests" if event.scope == "job" else "tests"
    if event.passed is None:
        return ((f"{scope}: no test command", "dim"),)
    if event.passed:
        return (("✓ ", "green"), (f"{scope} passed", "green"), (f" · `{event.command}`", ""))
    return (("✗ ", "red"), (f"{scope} FAILED", "red bold"), (f" · `{event.command}` exit {event.exit_code}", ""))


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, dict):
        if "command" in arguments:
            return "$ " + short(arguments["command"], 160)
        if "path" in arguments:
            return short(arguments["path"], 160)
        return short(", ".join(f"{k}={v}" for k, v in arguments.items()), 160)
    return short(arguments, 160)
