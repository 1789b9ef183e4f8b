"""The plan as a tree: the job, its planner, and every subtask with the agents working on it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from orchestrator.store.job_view import AgentView, JobView, SubtaskView
from tui.format import ACTIVE, ICON, STYLE, status_text
from tui.logbook import JOB


class PlanTree(Tree[str]):
    """Each node's data is the log scope it stands for: "job", "subtask:<id>" or "agent:<name>".
    A retried subtask groups its agents by attempt. Space folds a subtask, j/k move as ↓/↑."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__("job", data=JOB, id="plan-tree")
        self.guide_depth = 3
        self._plan_version = -1
        self._by_scope: dict[str, TreeNode[str]] = {}
        self._attempts: dict[str, int] = {}

    def sync(self, progress: JobView, job_status: str, changed: set[str]) -> None:
        """Bring the tree up to date; only the nodes named in `changed` are relabelled."""
        if "job" in changed:
            self.root.set_label(Text.assemble(("job ", "bold"), status_text(job_status)))
        if progress.plan_version != self._plan_version:
            self._rebuild(progress, job_status)
            return
        for name, agent in progress.agents.items():
            if f"agent:{name}" not in self._by_scope:
                self._add_agent(agent, job_status)
            elif f"agent:{name}" in changed or "job" in changed:
                self._by_scope[f"agent:{name}"].set_label(agent_label(agent, job_status))
        for sub in progress.subtasks.values():
            if f"subtask:{sub.id}" in changed:
                self._by_scope[f"subtask:{sub.id}"].set_label(subtask_label(sub))

    def _rebuild(self, progress: JobView, job_status: str) -> None:
        selected = self.cursor_node.data if self.cursor_node else JOB
        self.root.remove_children()
        self._by_scope = {}
        self._attempts = {sub.id: sub.attempt for sub in progress.subtasks.values()}
        for sub in progress.subtasks.values():
            self._by_scope[f"subtask:{sub.id}"] = self.root.add(subtask_label(sub), data=f"subtask:{sub.id}",
                                                                expand=True, allow_expand=False)
            if sub.attempt > 1:
                for attempt in range(1, sub.attempt + 1):  # the new attempt shows even before its agents
                    self._attempt_node(self._by_scope[f"subtask:{sub.id}"], sub.id, attempt)
        for agent in progress.agents.values():
            self._add_agent(agent, job_status)
        self.root.expand()
        self._plan_version = progress.plan_version
        if selected in self._by_scope:
            # Node lines are laid out on the next refresh; the cursor can only go there after.
            self.call_after_refresh(self.move_cursor, self._by_scope[selected])

    def _add_agent(self, agent: AgentView, job_status: str) -> None:
        scope = f"agent:{agent.name}"
        parent = self._by_scope.get(f"subtask:{agent.subtask}", self.root)
        if parent is self.root:
            # The planner comes before the subtasks it planned.
            before = next(iter(self.root.children), None)
            self._by_scope[scope] = self.root.add_leaf(agent_label(agent, job_status), data=scope, before=before)
        else:
            parent.allow_expand = True  # a subtask shows its fold marker once it has agents
            if self._attempts.get(agent.subtask or "", 1) > 1:
                parent = self._attempt_node(parent, agent.subtask or "", agent.attempt)
            self._by_scope[scope] = parent.add_leaf(agent_label(agent, job_status), data=scope)

    def _attempt_node(self, subtask: TreeNode[str], sub_id: str, attempt: int) -> TreeNode[str]:
        key = f"attempt:{sub_id}:{attempt}"
        if key not in self._by_scope:
            latest = attempt == self._attempts.get(sub_id, 1)  # older attempts start folded
            self._by_scope[key] = subtask.add(Text(f"attempt {attempt}", style="dim"),
                                              data=f"subtask:{sub_id}", expand=latest)
        return self._by_scope[key]


def subtask_label(sub: SubtaskView) -> Text:
    return Text.assemble((f"{sub.id} ", "bold"), status_text(sub.status), ("  " + sub.title, "dim"))


def agent_label(agent: AgentView, job_status: str) -> Text:
    if agent.status == "running":
        if job_status not in ACTIVE:  # the job ended around it: it will never finish
            state = status_text("stopped")
        else:
            state = Text(f"◐ step {agent.steps}", style="cyan")
    elif agent.verdict:
        state = Text.assemble((ICON[agent.verdict] + " ", STYLE[agent.verdict]),
                              ("approved" if agent.verdict == "approve" else "changes", STYLE[agent.verdict]))
    elif agent.status == "submitted":
        state = Text(f"✓ {agent.steps} step{'s' * (agent.steps != 1)}", style=STYLE["submitted"])
    else:
        state = status_text(agent.status)
    return Text.assemble(f"{agent.label} ", state)
