"""The director's console: a Textual app over the job store.

It only reads the store (jobs and their event log, by polling) and calls orchestrator
functions. Jobs run in processes of their own (`orchestrator.runtime.background.launch`), so
closing the app never stops one.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from textual.app import App, SystemCommand
from textual.screen import Screen

from orchestrator.config.settings import Settings
from orchestrator.runtime.background import launch
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job, JobStatus, Task
from tui.screens.jobs import JobsScreen

Clock = Callable[[], float]
T = TypeVar("T")


class Launcher(Protocol):
    """Starts a job's work (run, answer, retry) somewhere it outlives the app: `launch` by default."""

    def __call__(self, settings: Settings, job_id: str, action: Any = "run", repo: Path | None = None) -> object: ...


class ShipyardApp(App[None]):
    TITLE = "Shipyard"
    CSS_PATH = "styles.tcss"

    def __init__(self, settings: Settings, repo: Path, *, launcher: Launcher = launch, clock: Clock = time.time,
                 poll_interval: float = 0.25) -> None:
        super().__init__()
        self.settings = settings
        self.repo = repo
        self.launcher = launcher
        self.clock = clock
        self.poll_interval = poll_interval
        self.director = Director(settings)
        self.sub_title = repo.name
        self._statuses: dict[str, JobStatus] | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self._failing: set[str] = set()

    def get_default_screen(self) -> Screen[Any]:
        return JobsScreen()

    def on_mount(self) -> None:
        self.run_worker(self._announce_loop(), group="announce", exclusive=True)

    # -- what the screens use ----------------------------------------------------------

    def submit_task(self, task: Task) -> Job:
        """Record the job and start it in the background (called off the UI thread)."""
        job = self.director.submit(task)
        self.launch(job.id, "run")
        return job

    def launch(self, job_id: str, action: str = "run") -> None:
        # From the repo the app was opened on: the job's process then reads the same shipyard.toml.
        process = self.launcher(self.settings, job_id, action, repo=self.repo)
        if isinstance(process, subprocess.Popen):
            self._children.append(process)

    # -- toasts for every job, whichever screen is open --------------------------------------

    async def read(self, reader: str, function: Callable[..., T], *args: Any) -> T | None:
        """`function(*args)` on the store, off the UI thread. While it fails (the store briefly out of
        reach, a job pruned), None, and one toast per reader: the reader's loop simply tries again."""
        try:
            result = await asyncio.to_thread(function, *args)
        except Exception as exc:  # noqa: BLE001 - see above
            if reader not in self._failing:
                self._failing.add(reader)
                self.notify(f"{type(exc).__name__}: {exc}", title="Cannot read the job store", severity="error")
            return None
        self._failing.discard(reader)
        return result

    async def _announce_loop(self) -> None:
        while True:
            jobs = await self.read("announce", self.director.list, None, 200)
            if jobs is not None:
                self._announce(jobs)
            # Reap finished job processes; they keep running on their own after the app exits.
            self._children = [p for p in self._children if p.poll() is None]
            await asyncio.sleep(self.poll_interval)

    def _announce(self, jobs: list[Job]) -> None:
        """A toast when a plan starts waiting for approval and when a job finishes."""
        known = self._statuses
        self._statuses = {job.id: job.status for job in jobs}
        if known is None:
            return  # what was already so when the app opened is not news
        for job in jobs:
            if known.get(job.id) == job.status:
                continue
            if job.status == JobStatus.AWAITING_APPROVAL:
                self.notify(f"Job {job.id}: the plan waits for your approval (open it, then a/e/x).",
                            title="Plan ready", timeout=10)
            elif job.status.finished:
                self.notify(f"Job {job.id} {job.status.value}." + (f" {job.error}" if job.error else ""),
                            title="Job finished", severity="information" if job.status == JobStatus.SUCCEEDED
                            else "warning", timeout=10)

    # -- the command palette: every action of the screen, as on its footer ------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, active in screen.active_bindings.items():
            binding = active.binding
            # The screen's own actions; the app's (quit) are among the system commands already.
            if active.node is screen and active.enabled and binding.show and not binding.action.startswith("app."):
                yield SystemCommand(binding.tooltip or binding.description, f"key: {binding.key_display or key}",
                                    partial(screen.run_action, binding.action))
        commands = getattr(screen, "commands", None)
        if commands is not None:
            yield from commands()
