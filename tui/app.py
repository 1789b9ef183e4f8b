"""The director's console: a Textual app over the job store.

It only reads the store (jobs and their event log, by polling what changed) and calls the Director
API. Jobs run in processes of their own (`orchestrator.runtime.background.launch`), so closing the
app never stops one. The orchestrator loads off the UI thread: the first screen paints before it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from orchestrator.store.jobs import Job, JobStatus, Task
from tui.feed import Change, JobFeed
from tui.screens.jobs import JobsScreen

if TYPE_CHECKING:
    from orchestrator.config.settings import Settings
    from orchestrator.runtime.director import Director

Clock = Callable[[], float]
T = TypeVar("T")
# Toasts of one poll about more jobs than this become one toast naming them.
BUNDLE = 2


class Launcher(Protocol):
    """Starts a job's work (run, answer, retry) somewhere it outlives the app: `launch` by default.
    `subtasks`: the ones a retry runs again (None: every failed one)."""

    def __call__(self, settings: Settings, job_id: str, action: Any = "run", repo: Path | None = None,
                 subtasks: list[str] | None = None) -> object: ...


def background_launch(settings: Settings, job_id: str, action: Any = "run", repo: Path | None = None,
                      subtasks: list[str] | None = None) -> object:
    from orchestrator.runtime.background import launch  # with the orchestrator, off the start-up path

    return launch(settings, job_id, action, repo=repo, subtasks=subtasks)


@dataclass
class Child:
    """A job process the app launched: reaped when it ends, its failure told."""

    job_id: str
    action: str
    process: subprocess.Popen[bytes]


class ShipyardApp(App[None]):
    TITLE = "Shipyard"
    CSS_PATH = "styles.tcss"
    BINDINGS = [Binding("question_mark", "help", "Help", tooltip="Every key of this screen")]

    def __init__(self, settings: Settings, repo: Path, *, launcher: Launcher = background_launch,
                 clock: Clock = time.time, poll_interval: float = 0.25) -> None:
        super().__init__()
        self.settings = settings
        self.repo = repo
        self.launcher = launcher
        self.clock = clock
        self.poll_interval = poll_interval
        self.sub_title = repo.name
        self.feed = JobFeed()
        self._statuses: dict[str, JobStatus] | None = None
        self._children: list[Child] = []
        self._failing: set[str] = set()
        # What the feed had to tell while a dialog was up: told, bundled, once the dialog closes.
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._held_jobs: tuple[dict[str, Job], dict[str, Job]] = ({}, {})  # (waiting, finished) by id

    @cached_property
    def director(self) -> Director:
        """Built on first use; the first use is the feed's first poll, in a thread."""
        from orchestrator.runtime.director import Director

        return Director(self.settings)

    def get_default_screen(self) -> Screen[Any]:
        return JobsScreen()

    def on_mount(self) -> None:
        self.run_worker(self._feed_loop(), group="feed", exclusive=True)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # -- what the screens use ----------------------------------------------------------

    def submit_task(self, task: Task) -> Job:
        """Record the job and start it in the background (called off the UI thread)."""
        job = self.director.submit(task)
        self.launch(job.id, "run")
        return job

    def launch(self, job_id: str, action: str = "run", subtasks: list[str] | None = None) -> None:
        # From the repo the app was opened on: the job's process then reads the same shipyard.toml.
        process = self.launcher(self.settings, job_id, action, repo=self.repo, subtasks=subtasks)
        if isinstance(process, subprocess.Popen):
            self._children.append(Child(job_id, action, process))

    # -- the store, followed once for every screen ------------------------------------------

    async def read(self, reader: str, function: Callable[..., T], *args: Any) -> T | None:
        """`function(*args)` on the store, off the UI thread. While it fails (the store briefly out of
        reach, a job pruned), None, and one toast per reader: the reader's loop simply tries again."""
        try:
            result = await asyncio.to_thread(function, *args)
        except Exception as exc:  # noqa: BLE001 - see above
            if reader not in self._failing:
                self._failing.add(reader)
                self.tell(f"{type(exc).__name__}: {exc}", title="Cannot read the job store", severity="error")
            return None
        self._failing.discard(reader)
        return result

    async def _feed_loop(self) -> None:
        while True:
            change = await self.read("jobs", self._poll)
            if change:
                self._announce(change)
                for screen in self.screen_stack:
                    updated = getattr(screen, "feed_updated", None)
                    if updated is not None:
                        updated(change)
            self._reap()
            if not self.in_dialog:
                self._release()
            await asyncio.sleep(self.poll_interval)

    def _poll(self) -> Change:
        return self.feed.poll(self.director)

    def _reap(self) -> None:
        """Forget ended job processes (they run on after the app exits); a failed one's last words as a toast."""
        running = []
        for child in self._children:
            code = child.process.poll()
            if code is None:
                running.append(child)
            elif code != 0:
                self.tell(f"`shipyard work {child.job_id} --action {child.action}` exited with {code}: "
                            f"{self._last_words(child.job_id)}", title=f"Job {child.job_id[-4:]}: its process failed",
                            severity="error", timeout=20)
        self._children = running

    def _last_words(self, job_id: str) -> str:
        log = self.settings.state_dir / "logs" / f"{job_id}.log"
        try:
            lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log"
        return lines[-1] if lines else "it printed nothing"

    def _announce(self, change: Change) -> None:
        """Toasts for plans that start waiting for approval and jobs that finish, told by `_release`."""
        jobs = self.feed.jobs
        known = self._statuses
        self._statuses = {job.id: job.status for job in jobs.values()}
        if known is None:
            return  # what was already so when the app opened is not news
        waiting, finished = self._held_jobs
        for job_id in change.jobs:
            job = jobs.get(job_id)
            if job is None or known.get(job_id) == job.status:
                continue
            if job.status.waiting:
                waiting[job.id] = job
            elif job.status.finished:
                waiting.pop(job.id, None)
                finished[job.id] = job

    @property
    def in_dialog(self) -> bool:
        """A dialog (a form, a confirmation, the help) is on top: the feed's toasts wait until it closes."""
        return bool(self.screen_stack) and isinstance(self.screen_stack[-1], ModalScreen)

    def tell(self, message: str, **kwargs: Any) -> None:
        """A toast about something the director did not just do: held while a dialog is up."""
        if self.in_dialog:
            self._held.append((message, kwargs))
        else:
            self.notify(message, **kwargs)

    def _release(self) -> None:
        """The toasts held (and those of this poll): several plans or finished jobs at once make one toast."""
        held, self._held = self._held, []
        for message, kwargs in held:
            self.notify(message, **kwargs)
        waiting = list(self._held_jobs[0].values())
        finished = list(self._held_jobs[1].values())
        self._held_jobs = ({}, {})
        if len(waiting) > BUNDLE:
            self.notify(f"{len(waiting)} jobs wait for you: " + ", ".join(j.id[-4:] for j in waiting)
                        + ". The inbox lists them first.", title="Plans ready", timeout=10)
        else:
            for job in waiting:
                what = "a top-up of its budget" if job.status == JobStatus.AWAITING_BUDGET else \
                    "your approval of the plan (open it, then a/e/x)"
                self.notify(f"Job {job.id} waits for {what}.", title="Waiting for you", timeout=10)
        if len(finished) > BUNDLE:
            failed = sum(1 for j in finished if not j.status.delivered)
            self.notify(f"{len(finished)} jobs finished ({failed} not succeeded): "
                        + ", ".join(f"{j.id[-4:]} {j.status.label}" for j in finished),
                        title="Jobs finished", severity="warning" if failed else "information", timeout=10)
        else:
            for job in finished:
                self.notify(f"Job {job.id} {job.status.label}." + (f" {job.error}" if job.error else ""),
                            title="Job finished", severity="information" if job.status.delivered
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
