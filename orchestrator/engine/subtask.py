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
from orchestrator.engine.services import JobServices
from orchestrator.engine.state import SubtaskResult, TestRun
from sandboxes.git.workspace import Workspace

MAX_FIX_ROUNDS = 2
MAX_REVIEW_ROUNDS = 2


class StageResult(BaseModel):
    head: str
    outcome: AgentOutcome


class SubtaskPipeline:
    def __init__(self, services: JobServices):
        self.s = services
        # Tasks are bound here so that their checkpointed results key on call order
        # inside the subtask node, which is the same on every replay.
        self.code_stage = task(name="code")(self._code)
        self.test_stage = task(name="test")(self._test)
        self.fix_stage = task(name="fix")(self._fix)
        self.review_stage = task(name="review")(self._review)

    def run(self, subtask: Subtask, base_ref: str) -> SubtaskResult:
        s = self.s
        ws = s.workspace(subtask.id, base_ref)
        start = s.repo.resolve(base_ref)
        s.emit("subtask.status", subtask=subtask.id, status="coding", branch=ws.branch)
        feedback: str | None = None
        verdict: ReviewVerdict | None = None
        tests = TestRun(command=None, passed=None)
        fix_rounds = 0
        try:
            for review_round in range(MAX_REVIEW_ROUNDS + 1):
                if review_round == 0 and s.task.candidates > 1:
                    pick = self._race(subtask, start)
                    if pick is None:
                        return self._failed(subtask, ws, "no candidate changed anything", tests, 0, 0)
                    head, tests, verdict = pick
                    ws.reset(head)
                else:
                    coded = self.code_stage(subtask, subtask.id, start, feedback, review_round).result()
                    if not coded.outcome.submitted and coded.head == start:
                        return self._failed(subtask, ws, f"coder: {coded.outcome.reason}", tests, fix_rounds,
                                            review_round)
                    head, verdict = coded.head, None
                    tests = self.test_stage(subtask, subtask.id, head).result()
                while tests.passed is False and fix_rounds < MAX_FIX_ROUNDS and s.budget_left():
                    fix_rounds += 1
                    s.emit("subtask.status", subtask=subtask.id, status="fixing", round=fix_rounds)
                    head = self.fix_stage(subtask, head, tests, fix_rounds).result().head
                    tests = self.test_stage(subtask, subtask.id, head).result()
                    verdict = None
                if not s.budget_left():
                    return self._failed(subtask, ws, "job budget spent", tests, fix_rounds, review_round)
                if verdict is None:
                    verdict = self.review_stage(subtask, subtask.id, base_ref, head, tests, review_round).result()
                if verdict.approved and tests.passed is not False:
                    s.emit("subtask.status", subtask=subtask.id, status="approved", head=head)
                    return SubtaskResult(
                        id=subtask.id, status="approved", branch=ws.branch, head=head, tests=tests,
                        verdict=verdict, fix_rounds=fix_rounds, review_rounds=review_round,
                    )
                feedback = _feedback(verdict, tests)
                start = head
            return self._failed(subtask, ws, "changes still requested after the last review round", tests,
                                fix_rounds, MAX_REVIEW_ROUNDS, verdict)
        finally:
            s.repo.remove_workspace(ws)

    def _race(self, subtask: Subtask, start: str) -> tuple[str, TestRun, ReviewVerdict | None] | None:
        """N coders attempt the subtask at once; the best verified attempt wins: passing tests
        first, then the reviewer's approval, then the smallest change."""
        s = self.s
        names = [f"{subtask.id}-c{i + 1}" for i in range(s.task.candidates)]
        coded = [self.code_stage(subtask, name, start, None, 0, i) for i, name in enumerate(names)]
        heads = {name: future.result().head for name, future in zip(names, coded, strict=True)}
        changed = [name for name in names if heads[name] != start]
        if not changed:
            return None
        tested = {name: self.test_stage(subtask, name, heads[name]) for name in changed}
        tests = {name: future.result() for name, future in tested.items()}
        contenders = [name for name in changed if tests[name].passed is not False] or changed
        reviewed = {name: self.review_stage(subtask, name, start, heads[name], tests[name], 0) for name in contenders}
        verdicts = {name: future.result() for name, future in reviewed.items()}

        def rank(name: str) -> tuple[bool, bool, int]:
            size = s.repo.diff_stat(start, heads[name])
            return (tests[name].passed is False, not verdicts[name].approved, size.insertions + size.deletions)

        winner = min(contenders, key=rank)
        for name in names:
            s.drop_workspace(name)
        s.emit("candidates.chosen", subtask=subtask.id, winner=winner, head=heads[winner], scores={
            name: {"tests": tests[name].passed, "approved": verdicts[name].approved if name in verdicts else None}
            for name in changed
        })
        return heads[winner], tests[winner], verdicts[winner]

    def _failed(self, subtask: Subtask, ws: Workspace, reason: str, tests: TestRun, fix_rounds: int,
                review_rounds: int, verdict: ReviewVerdict | None = None) -> SubtaskResult:
        self.s.emit("subtask.status", subtask=subtask.id, status="failed", reason=reason)
        return SubtaskResult(
            id=subtask.id, status="failed", branch=ws.branch, head=ws.head(), tests=tests, verdict=verdict,
            fix_rounds=fix_rounds, review_rounds=review_rounds, reason=reason,
        )

    # -- stages (each a checkpointed task) ---------------------------------------

    def _code(self, subtask: Subtask, name: str, start: str, feedback: str | None, round_: int,
              candidate: int | None = None) -> StageResult:
        s = self.s
        agent = f"{name}.coder.{round_ + 1}"
        ws = s.workspace(name, start)
        ws.reset(start)
        with s.sandbox(ws.path, agent) as sandbox:
            outcome = roles.code(
                s.model("coder", agent, candidate), sandbox, s.task.instruction, subtask, s.test_command,
                s.limits(), s.agent_emitter("coder", agent, subtask.id), feedback=feedback, notes=s.notes,
            )
        head = ws.commit(_message(subtask, outcome, "coder"), role="coder", agent=agent) or ws.head()
        s.emit("agent.commit", subtask=subtask.id, role="coder", agent=agent, head=head)
        return StageResult(head=head, outcome=outcome)

    def _test(self, subtask: Subtask, name: str, head: str) -> TestRun:
        s = self.s
        s.emit("subtask.status", subtask=subtask.id, status="testing")
        ws = s.workspace(name, head)
        ws.reset(head)
        with s.sandbox(ws.path, f"{name}.tests") as sandbox:
            run = s.run_tests(sandbox, s.test_command)
        s.emit("test.result", subtask=subtask.id, agent=name, passed=run.passed, exit_code=run.exit_code,
               output=run.output[-8000:], command=run.command)
        return run

    def _fix(self, subtask: Subtask, head: str, tests: TestRun, round_: int) -> StageResult:
        s = self.s
        agent = f"{subtask.id}.test_fixer.{round_}"
        ws = s.workspace(subtask.id, head)
        ws.reset(head)
        with s.sandbox(ws.path, agent) as sandbox:
            outcome = roles.fix_tests(
                s.model("test_fixer", agent), sandbox, subtask, tests.command or "", tests.exit_code or 1,
                tests.output, s.limits(), s.agent_emitter("test_fixer", agent, subtask.id),
            )
        new_head = ws.commit(_message(subtask, outcome, "test-fixer"), role="test_fixer", agent=agent) or head
        s.emit("agent.commit", subtask=subtask.id, role="test_fixer", agent=agent, head=new_head)
        return StageResult(head=new_head, outcome=outcome)

    def _review(self, subtask: Subtask, name: str, base_ref: str, head: str, tests: TestRun,
                round_: int) -> ReviewVerdict:
        s = self.s
        agent = f"{name}.reviewer.{round_ + 1}"
        s.emit("subtask.status", subtask=subtask.id, status="reviewing")
        ws = s.workspace(name, head)
        ws.reset(head)
        with s.sandbox(ws.path, agent) as sandbox:
            try:
                verdict, _ = roles.review(
                    s.model("reviewer", agent), sandbox, subtask, s.repo.diff(base_ref, head), tests.command,
                    bool(tests.passed) or tests.passed is None, tests.output[-6000:], s.limits(),
                    s.agent_emitter("reviewer", agent, subtask.id),
                )
            except roles.RoleError as exc:
                verdict = ReviewVerdict(decision="request_changes", summary=str(exc), comments=[])
        s.emit("review.verdict", subtask=subtask.id, role="reviewer", agent=agent, **verdict.model_dump())
        return verdict


def _message(subtask: Subtask, outcome: AgentOutcome, role: str) -> str:
    body = outcome.summary.strip() or f"({role} stopped: {outcome.reason})"
    return f"{subtask.id}: {subtask.title}\n\n{body}\n"


def _feedback(verdict: ReviewVerdict, tests: TestRun) -> str:
    lines = [verdict.summary, *(f"- {c}" for c in verdict.comments)]
    if tests.passed is False:
        lines.append(f"The tests still fail (`{tests.command}`):\n{tests.output[-3000:]}")
    return "\n".join(lines)
