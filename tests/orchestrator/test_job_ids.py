"""A job is found by its whole id, a unique prefix of it, or its end as the TUI shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.store.db import open_store, sqlite_url
from orchestrator.store.jobs import JobLookupError, JobStore, Task


def test_a_job_is_found_by_its_id_a_prefix_or_its_short_id(tmp_path: Path) -> None:
    store = JobStore(open_store(sqlite_url(tmp_path)))
    task = Task(instruction="x", repo=str(tmp_path))
    one = store.create(task, job_id="20261202-050000-5a1f9c2e")
    two = store.create(task, job_id="20261202-050001-77aa5a1f")

    assert store.find(one.id).id == one.id
    assert store.find("20261202-050000").id == one.id
    assert store.find("9c2e").id == one.id  # the end of an id: what the TUI's list shows
    assert store.find("77aa5a1f").id == two.id
    with pytest.raises(JobLookupError, match="matches several jobs"):
        store.find("20261202-05000")
    assert store.find("5a1f").id == two.id  # inside one's tail, but only the other's end
    store.create(task, job_id="20261202-050002-88bb5a1f")
    with pytest.raises(JobLookupError, match="matches several jobs"):
        store.find("5a1f")
    with pytest.raises(JobLookupError):
        store.find("2e")  # too short to be taken as an id's end
    with pytest.raises(JobLookupError):
        store.find("2026%")  # a wildcard is a character like any other
