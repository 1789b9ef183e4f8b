"""SVG snapshots of the inbox, the job screen, its long log, the diff view and a campaign at 80x24 and 160x48.

They replay the recorded demo job (fixed ids, times and shas), so they are the same on
every run. After a deliberate change of the UI: `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from tuikit import LONG_OUTPUT, RECORDED_CAMPAIGN, RECORDED_JOB, RECORDED_NOW, node_label, wait_until

from orchestrator.config.settings import Settings
from tui.app import ShipyardApp
from tui.screens.campaign import CampaignScreen
from tui.screens.job import JobScreen
from tui.widgets.diff_view import DiffView
from tui.widgets.log_view import LogView
from tui.widgets.plan_tree import PlanTree

SIZES = [(80, 24), (160, 48)]


def _never_launch(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a snapshot must not start jobs")


def recorded_app(recorded: tuple[Settings, Path]) -> ShipyardApp:
    settings, repo = recorded
    return ShipyardApp(settings, repo, launcher=_never_launch, clock=lambda: RECORDED_NOW, poll_interval=0.05)


async def jobs_listed(pilot: Pilot[Any]) -> None:
    await wait_until(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == 5, "the five jobs")


async def job_opened(pilot: Pilot[Any]) -> None:
    await jobs_listed(pilot)
    table = pilot.app.screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(RECORDED_JOB))
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, JobScreen) and pilot.app.screen.ingested == 93
                     and "merged" in node_label(pilot.app.screen.query_one(PlanTree), "subtask:s3"),
                     "the job's events on screen")
    await pilot.pause(0.3)  # one more repaint of the header and panels


async def subtask_diff_shown(pilot: Pilot[Any]) -> None:
    await job_opened(pilot)
    tree = pilot.app.screen.query_one(PlanTree)
    while tree.cursor_node is None or tree.cursor_node.data != "subtask:s2":
        await pilot.press("down")
    await pilot.press("2")
    await wait_until(pilot, lambda: len(pilot.app.screen.query_one(DiffView).files) == 2, "s2's diff")
    await pilot.pause(0.1)


async def long_log_shown(pilot: Pilot[Any]) -> None:
    """The test fixer's own log, whose last command printed 240 lines: its head, its tail, the count between."""
    await job_opened(pilot)
    tree = pilot.app.screen.query_one(PlanTree)
    while tree.cursor_node is None or tree.cursor_node.data != "agent:s2.test_fixer.1":
        await pilot.press("down")
    view = pilot.app.screen.query_one(LogView)
    verdict = LONG_OUTPUT.splitlines()[-1]
    await wait_until(pilot, lambda: any(verdict in "".join(t for t, _ in line) for line in view.lines), "its log")
    await pilot.pause(0.1)


async def campaign_opened(pilot: Pilot[Any]) -> None:
    await jobs_listed(pilot)
    table = pilot.app.screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(RECORDED_CAMPAIGN))
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, CampaignScreen)
                     and pilot.app.screen.query_one(DataTable).row_count == 4, "the campaign's iterations")
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_job_screen_with_a_long_log(snap_compare: Any, recorded: tuple[Settings, Path], size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(recorded), terminal_size=size, run_before=long_log_shown)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_campaign_screen(snap_compare: Any, recorded: tuple[Settings, Path], size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(recorded), terminal_size=size, run_before=campaign_opened)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_jobs_screen(snap_compare: Any, recorded: tuple[Settings, Path], size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(recorded), terminal_size=size, run_before=jobs_listed)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_job_screen(snap_compare: Any, recorded: tuple[Settings, Path], size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(recorded), terminal_size=size, run_before=job_opened)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_diff_view(snap_compare: Any, recorded: tuple[Settings, Path], size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(recorded), terminal_size=size, run_before=subtask_diff_shown)


def test_job_screen_in_a_light_theme(snap_compare: Any, recorded: tuple[Settings, Path]) -> None:
    async def light(pilot: Pilot[Any]) -> None:
        pilot.app.theme = "textual-light"
        await subtask_diff_shown(pilot)

    assert snap_compare(recorded_app(recorded), terminal_size=(100, 30), run_before=light)
