"""The live logs of a job: each event as one or a few lines, kept per scope in a bounded window.

A scope is the whole job, one subtask or one agent. Each keeps only its last `window`
lines, and only the most recently active agents keep a log at all, so following a job
of any length holds the TUI's memory flat.

A line is a tuple of (text, style) spans, not a rich Text: a job may log thousands of
lines a second, and only the few on screen are ever rendered.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Any

from orchestrator.store.event_log import Event
from tui.format import ICON, STYLE, duration, first_line, label, money, short, tokens

Span = tuple[str, str]  # text, style
Line = tuple[Span, ...]

LOG_WINDOW = 2000
AGENT_LOGS = 64  # agents whose logs are kept; the least recently active beyond these are dropped
JOB = "job"
INDENT: Span = (" " * 9, "")


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

    def add(self, event: Event) -> dict[str, list[Line]]:
        """Log the event; the new lines of each scope it belongs to."""
        bodies = event_lines(event)
        if not bodies:
            return {}
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
    p = event.payload
    kind = event.kind
    if kind == "agent.message":
        content = (p.get("content") or "").strip()
        return [(("» " + first_line(content, 200), "italic"),)] if content else []  # tool calls show with results
    if kind == "agent.tool_result":
        call: Line = (("▸ ", "cyan"), (str(p.get("tool")), "bold"), (" " + _arguments(p.get("arguments")), ""))
        if not p.get("ok", True):
            call += ((" ✗", "red"),)
        lines = [call]
        if p.get("tool") not in ("view_file", "submit", "submit_plan", "submit_review"):
            output = (p.get("output") or "").strip().splitlines()
            lines += [(("└ " + short(line, 160), "dim"),) for line in output[:3]]
            if len(output) > 3:
                lines.append(((f"  … {len(output) - 3} more lines", "dim"),))
        return lines
    if kind == "agent.finished":
        usage = p.get("usage") or {}
        spent = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        why = "" if p.get("status") == "submitted" else f" · {short(p.get('reason'), 120)}"
        summary = (f" after {p.get('steps', 0)} steps · {tokens(spent)} tok · {money(usage.get('cost', 0.0))} · "
                   f"{duration(p.get('seconds') or 0)}{why}")
        return [(status_span(str(p.get("status"))), (summary, ""))]
    if kind == "agent.commit":
        return [(("● ", "cyan"), (f"committed {str(p.get('head'))[:10]}", ""))]
    if kind == "subtask.status":
        reason = f" · {short(p.get('reason'), 160)}" if p.get("reason") else ""
        return [(status_span(str(p.get("status"))), (reason, "red"))]
    if kind == "test.result":
        lines = [_test_line(p)]
        if p.get("passed") is False:
            tail = [line for line in (p.get("output") or "").strip().splitlines() if line.strip()][-3:]
            lines += [(("└ " + short(line, 160), "dim"),) for line in tail]
        return lines
    if kind == "review.verdict":
        lines = [(status_span(str(p.get("decision"))), (" " + short(p.get("summary"), 200), ""))]
        return lines + [(("- " + short(comment, 200), "yellow"),) for comment in p.get("comments", [])]
    if kind == "merge":
        if p.get("ok"):
            return [(("⇢ ", "green"), (f"merged {p.get('branch', '')} into the job branch", ""))]
        return [(("⇢ ", "red"), (f"conflicts in {', '.join(p.get('conflicts', []))}", ""))]
    if kind == "plan.ready":
        plan = p.get("plan") or {}
        return [(("plan ready: ", "bold"),
                 (f"{len(plan.get('subtasks', []))} subtasks · {short(plan.get('summary'), 160)}", ""))]
    if kind in ("job.status", "job.finished"):
        error = f" · {short(p.get('error'), 160)}" if p.get("error") else ""
        return [(("job ", ""), status_span(str(p.get("status"))), (error, "red"))]
    if kind == "job.prepared":
        before = {True: "pass", False: "fail", None: "none"}[p.get("tests_before")]
        return [((f"prepared {p.get('job_branch')} at {str(p.get('base_sha'))[:10]} · tests before: {before}", ""),)]
    if kind == "job.submitted":
        return [(("submitted: ", "bold"), (short(p.get("instruction"), 200), ""))]
    if kind == "job.waiting":
        return [(("waiting for the director's approval of the plan", "yellow bold"),)]
    if kind in ("plan.approved", "plan.rejected", "plan.edited"):
        reason = f": {short(p.get('reason'), 160)}" if p.get("reason") else ""
        return [((f"plan {kind.partition('.')[2]}", "bold"), (reason, ""))]
    if kind == "director.note":
        return [(("note: ", "magenta bold"), (short(p.get("text"), 200), ""))]
    if kind == "job.accepted":
        return [(("accepted: ", "green bold"), (short(p.get("message"), 160), ""))]
    if kind == "job.discarded":
        return [(("discarded: ", "bold"), (f"deleted {', '.join(p.get('branches', [])) or 'no branches'}", ""))]
    if kind == "candidates.chosen":
        return [(("candidate chosen: ", "bold"), (f"{p.get('winner')} of {len(p.get('scores', {}))}", ""))]
    return [((kind, "cyan"), (" " + short(p, 160), ""))]


def _test_line(p: dict[str, Any]) -> Line:
    scope = "job tests" if p.get("scope") == "job" else "tests"
    if p.get("passed") is None:
        return ((f"{scope}: no test command", "dim"),)
    if p.get("passed"):
        return (("✓ ", "green"), (f"{scope} passed", "green"), (f" · `{p.get('command')}`", ""))
    return (("✗ ", "red"), (f"{scope} FAILED", "red bold"), (f" · `{p.get('command')}` exit {p.get('exit_code')}", ""))


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, dict):
        if "command" in arguments:
            return "$ " + short(arguments["command"], 160)
        if "path" in arguments:
            return short(arguments["path"], 160)
        return short(", ".join(f"{k}={v}" for k, v in arguments.items()), 160)
    return short(arguments, 160)
