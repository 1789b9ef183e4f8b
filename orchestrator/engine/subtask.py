"""One subtask's pipeline: code -> test -> fix (N rounds) -> review -> back to code (M rounds).

Each stage is a LangGraph task: its result is checkpointed, so a job resumed after a
crash replays finished stages from the checkpoint instead of running their agents again,
and a stage cut off mid-way starts over from the commit it began on.
"""

from __future__ import annotations

from langgraph.func import task
from pydantic import BaseModel

from agents import roles
from agents.loop import AgentOutcome
from agents.plan import ReviewVerdict, Subtask
from agents.roles import PROMPT_LIMITS
from agents.test_discovery import TestCommand
from orchestrator.engine.context import JobContext, test_result_event
from orchestrator.engine.state import SubtaskResult, TestRun
from orchestrator.engine.test_results import TestReport
from orchestrator.engine.test_tampering import render_tampering
from orchestrator.engine.verification import tampering, tampering_reason, what_ran
from orchestrator.store.events import AgentId, CandidateChosen, ReviewGiven, SubtaskStatus
from sandboxes.base import cap_output
from sandboxes.git.workspace import Workspace

MAX_FIX_ROUNDS = 2
MAX_REVIEW_ROUNDS = 2


class StageResult(BaseModel):
    head: str
    outcome: AgentOutcome


class SubtaskPipeline:
    def __init__(self, context: JobContext):
        self.ctx = context
        # Tasks are bound here so that their checkpointed results key on call order
        # inside the subtask node, which is the same on every replay.
        self.code_stage = task(name="code")(self._code)
        self.test_stage = task(name="test")(self._test)
        self.fix_stage = task(name="fix")(self._fix)
        self.review_stage = task(name="review")(self._review)

    def run(self, subtask: Subtask, base_ref: str, test: TestCommand | None,
            baseline: TestReport | None) -> SubtaskResult:
        ctx = self.ctx
        ws = ctx.workspace(subtask.id, base_ref)
        start = base = ctx.repo.resolve(base_ref)
        test_command = test.command if test else None
        self._status(subtask, "coding", branch=ws.branch)
        feedback: str | None = None
        verdict: ReviewVerdict | None = None
        tests = TestRun(command=None, passed=None)
        fix_rounds = 0
        tampered = ""
        try:
            for review_round in range(MAX_REVIEW_ROUNDS + 1):
                no_change: str | None = None
                if review_round == 0 and ctx.task.candidates > 1:
                    pick = self._race(subtask, start, test, baseline)
                    if pick is None:
                        return self._failed(subtask, ws, "no candidate changed anything", tests, 0, 0)
                    head, tests, verdict = pick
                    ws.reset(head)
                else:
                    coded = self.code_stage(subtask, subtask.id, start, test_command, feedback,
                                            review_round).result()
                    if not coded.outcome.submitted and coded.head == start:
                        return self._failed(subtask, ws, f"coder: {coded.outcome.reason}", tests, fix_rounds,
                                            review_round)
                    head, verdict = coded.head, None
                    if head == base:
                        # Nothing to show for the subtask: a failure, unless the coder says nothing needs to
                        # change, which the reviewer must then confirm.
                        if not (coded.outcome.submission or {}).get("no_change_needed"):
                            return self._failed(subtask, ws, _no_change(coded.outcome), tests, fix_rounds,
                                                review_round)
                        no_change = coded.outcome.summary or "(no reason given)"
                    tests = self.test_stage(subtask, subtask.id, head, test, baseline).result()
                while tests.passed is False and fix_rounds < MAX_FIX_ROUNDS and ctx.budget_left():
                    fix_rounds += 1
                    self._status(subtask, "fixing", round=fix_rounds)
                    head = self.fix_stage(subtask, head, tests, fix_rounds).result().head
                    tests = self.test_stage(subtask, subtask.id, head, test, baseline).result()
                    verdict = None
                if not ctx.budget_left():
                    return self._failed(subtask, ws, "job budget spent", tests, fix_rounds, review_round)
                findings, asked = tampering(ctx.repo.diff(base_ref, head), subtask)
                tampered = tampering_reason(findings) if findings and not asked else ""
                if verdict is None:
                    verdict = self.review_stage(subtask, subtask.id, base_ref, head, tests, review_round,
                                                render_tampering(findings), no_change).result()
                if verdict.approved and tests.passed is not False and not tampered:
                    self._status(subtask, "approved", head=head)
                    return SubtaskResult(
                        id=subtask.id, status="approved", branch=ws.branch, head=head, tests=tests,
                        verdict=verdict, fix_rounds=fix_rounds, review_rounds=review_round,
                    )
                feedback = _feedback(verdict, tests, tampered and render_tampering(findings))
                start = head
            reason = tampered or "changes still requested after the last review round"
            return self._failed(subtask, ws, reason, tests, fix_rounds, MAX_REVIEW_ROUNDS, verdict)
        finally:
            ctx.repo.remove_workspace(ws)

    def _race(self, subtask: Subtask, start: str, test: TestCommand | None,
              baseline: TestReport | None) -> tuple[str, TestRun, ReviewVerdict | None] | None:
        """N coders attempt the subtask at once; the best verified attempt wins: passing tests
        first, then the reviewer's approval, then the smallest change."""
        ctx = self.ctx
        names = [f"{subtask.id}-c{i + 1}" for i in range(ctx.task.candidates)]
        test_command = test.command if test else None
        coded = [self.code_stage(subtask, name, start, test_command, None, 0, i) for i, name in enumerate(names)]
        heads = {name: future.result().head for name, future in zip(names, coded, strict=True)}
        changed = [name for name in names if heads[name] != start]
        if not changed:
            return None
        tested = {name: self.test_stage(subtask, name, heads[name], test, baseline) for name in changed}
        tests = {name: future.result() for name, future in tested.items()}
        contenders = [name for name in changed if tests[name].passed is not False] or changed
        reviewed = {name: self.review_stage(subtask, name, start, heads[name], tests[name], 0,
                                            render_tampering(tampering(ctx.repo.diff(start, heads[name]), subtask)[0]))
                    for name in contenders}
        verdicts = {name: future.result() for name, future in reviewed.items()}

        def rank(name: str) -> tuple[bool, bool, int]:
            size = ctx.repo.diff_stat(start, heads[name])
            return (tests[name].passed is False, not verdicts[name].approved, size.insertions + size.deletions)

        winner = min(contenders, key=rank)
        for name in names:
            ctx.drop_workspace(name)
        ctx.emit(CandidateChosen(subtask=subtask.id, winner=winner, head=heads[winner], scores={
            name: {"tests": tests[name].passed, "approved": verdicts[name].approved if name in verdicts else None}
            for name in changed
        }))
        return heads[winner], tests[winner], verdicts[winner]

    def _status(self, subtask: Subtask, status: str, **fields: object) -> None:
        self.ctx.emit(SubtaskStatus(subtask=subtask.id, status=status, **fields))  # type: ignore[arg-type]

    def _failed(self, subtask: Subtask, ws: Workspace, reason: str, tests: TestRun, fix_rounds: int,
                review_rounds: int, verdict: ReviewVerdict | None = None) -> SubtaskResult:
        self._status(subtask, "failed", reason=reason)
        return SubtaskResult(
            id=subtask.id, status="failed", branch=ws.branch, head=ws.head(), tests=tests, verdict=verdict,
            fix_rounds=fix_rounds, review_rounds=review_rounds, reason=reason,
        )

    # -- stages (each a checkpointed task) ---------------------------------------

    def _code(self, subtask: Subtask, name: str, start: str, test_command: str | None, feedback: str | None,
              round_: int, candidate: int | None = None) -> StageResult:
        ctx = self.ctx
        agent = AgentId(role="coder", workspace=name, round=round_ + 1)
        with ctx.agent_sandbox(name, start, agent) as (ws, sandbox):
            run = ctx.role_run(roles.CODER, agent, subtask.id, sandbox, candidate, workspace=ws, touched=subtask.files)
            outcome = roles.code(run, ctx.task.instruction, subtask, test_command, feedback=feedback)
        head = ctx.commit(ws, agent, subtask.id, "coder", _message(subtask, outcome, "coder"))
        return StageResult(head=head, outcome=outcome)

    def _test(self, subtask: Subtask, name: str, head: str, test: TestCommand | None,
              baseline: TestReport | None) -> TestRun:
        ctx = self.ctx
        self._status(subtask, "testing")
        run = ctx.test_at(head, test, name, baseline, lambda: ctx.tests_sandbox(name, head),
                          targets=list(subtask.tests))
        ctx.emit(test_result_event(run, subtask=subtask.id, agent=name))
        return run

    def _fix(self, subtask: Subtask, head: str, tests: TestRun, round_: int) -> StageResult:
        ctx = self.ctx
        agent = AgentId(role="test_fixer", workspace=subtask.id, round=round_)
        with ctx.agent_sandbox(subtask.id, head, agent) as (ws, sandbox):
            run = ctx.role_run(roles.TEST_FIXER, agent, subtask.id, sandbox, workspace=ws, touched=subtask.files)
            outcome = roles.fix_tests(run, subtask, tests.command or "", tests.exit_code or 1, tests.output,
                                      what_ran(tests), tests.comparison.pre_existing_failures if tests.comparison
                                      else ())
        new_head = ctx.commit(ws, agent, subtask.id, "test_fixer", _message(subtask, outcome, "test-fixer"))
        return StageResult(head=new_head, outcome=outcome)

    def _review(self, subtask: Subtask, name: str, base_ref: str, head: str, tests: TestRun,
                round_: int, tampering_found: str = "", no_change: str | None = None) -> ReviewVerdict:
        ctx = self.ctx
        agent = AgentId(role="reviewer", workspace=name, round=round_ + 1)
        self._status(subtask, "reviewing")
        with ctx.agent_sandbox(name, head, agent) as (_, sandbox):
            run = ctx.role_run(roles.REVIEWER, agent, subtask.id, sandbox, touched=subtask.files)
            try:
                verdict, _ = roles.review(run, subtask, ctx.repo.diff(base_ref, head), tests.command, tests.passed,
                                          tests.output, what_ran(tests), tampering_found, no_change)
            except roles.RoleError as exc:
                verdict = ReviewVerdict(decision="request_changes", summary=str(exc), comments=[])
        ctx.emit(ReviewGiven(subtask=subtask.id, role="reviewer", agent=agent.name, decision=verdict.decision,
                             summary=verdict.summary, comments=verdict.comments))
        return verdict


def _message(subtask: Subtask, outcome: AgentOutcome, role: str) -> str:
    body = outcome.summary.strip() or f"({role} stopped: {outcome.reason})"
    return f"{subtask.id}: {subtask.title}\n\n{body}\n"


def _feedback(verdict: ReviewVerdict, tests: TestRun, tampered: str = "") -> str:
    lines = [verdict.summary, *(f"- {c}" for c in verdict.comments)]
    if tampered:
        lines.append(f"{tampered}\nRestore those tests: this subtask does not ask to remove or skip any.")
    if tests.passed is False:
        output, _ = cap_output(tests.output, PROMPT_LIMITS.feedback_test_chars)
        lines.append(f"The tests still fail (`{tests.command}`):\n{what_ran(tests)}\n{output}")
    return "\n".join(lines)


def _no_change(outcome: AgentOutcome) -> str:
    said = " ".join(outcome.summary.split())[:200]
    return "no change made" + (f" (the coder said: {said})" if said else "")
