"""`shipyard prune`: old finished jobs go with all their records, unless their branches still exist."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from helpers import git
from jobkit import Deployment

from orchestrator.engine.checkpoints import checkpointer
from orchestrator.runtime.prune import parse_age
from orchestrator.store.jobs import JobLookupError, JobStatus

DAY = 86400.0


@pytest.mark.bubblewrap
def test_prune_forgets_old_jobs_whose_branches_are_gone(deploy: Callable[..., Deployment]) -> None:
    d = deploy(None)
    runner = d.runner
    ran = [runner.run(d.submit(f"add note {n}")).id for n in range(2)]
    assert all(d.status(job) == JobStatus.SUCCEEDED for job in ran)
    recent = runner.submit(runner.get(ran[0]).task).id
    runner.records.jobs.update(recent, JobStatus.CANCELLED)
    for job in ran:
        runner.records.jobs.update(job, updated_at=time.time() - 40 * DAY)
    gone, kept = ran
    for branch in git(d.repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/shipyard/{gone}*").split():
        git(d.repo, "branch", "-D", branch)

    assert runner.prune(30 * DAY, dry_run=True).pruned == [gone]
    assert runner.get(gone)  # a dry run forgets nothing
    outcome = runner.prune(30 * DAY)

    assert outcome.pruned == [gone]
    assert "its work is on branches not merged into main" in outcome.kept[kept]
    with pytest.raises(JobLookupError):
        runner.get(gone)
    assert runner.events(gone) == []
    with checkpointer(runner.settings) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": gone}}) is None
        assert saver.get_tuple({"configurable": {"thread_id": kept}}) is not None
    assert {runner.get(kept).id, runner.get(recent).id} == {kept, recent}


def test_ages() -> None:
    assert parse_age("30d") == 30 * DAY
    assert parse_age("12h") == 12 * 3600
    assert parse_age("2w") == 14 * DAY
    with pytest.raises(ValueError, match="not an age"):
        parse_age("30 days")
