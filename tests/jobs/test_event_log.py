"""The event log on PostgreSQL: readers that follow it by id never step past an event still being written."""

from __future__ import annotations

import threading
from typing import Any

from jobkit import wait_for
from sqlalchemy import event, text

from orchestrator.store.db import open_store
from orchestrator.store.event_log import EventLog
from orchestrator.store.events import DirectorNote


def test_an_append_that_commits_late_never_leaves_a_gap_behind_a_reader(postgres_url: str) -> None:
    engine = open_store(postgres_url)
    log = EventLog(engine)
    committing, go_on = threading.Event(), threading.Event()

    def hold_the_first_commit(_conn: Any) -> None:
        # The first appender has inserted its row (and drawn its id) but not committed yet.
        if threading.current_thread().name == "first":
            committing.set()
            assert go_on.wait(60), "the test never let the first append commit"

    event.listen(engine, "commit", hold_the_first_commit)
    first = threading.Thread(target=log.append, args=(DirectorNote(job_id="j", text="first"),), name="first")
    second = threading.Thread(target=log.append, args=(DirectorNote(job_id="j", text="second"),), name="second")
    first.start()
    assert committing.wait(60)
    second.start()

    def second_done_or_waiting() -> bool:
        with engine.connect() as conn:
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND datname = current_database()")).scalar_one()
        return not second.is_alive() or waiting > 0

    try:
        wait_for(second_done_or_waiting, 60, "the second append to commit or wait for the first")
        # A reader now must see nothing: "second" alone would move its cursor past "first" for good.
        assert [e.text for e in log.list("j")] == []  # type: ignore[attr-defined]
    finally:
        go_on.set()
        first.join(60)
        second.join(60)
    events = log.list("j")
    assert [e.text for e in events] == ["first", "second"]  # type: ignore[attr-defined]
    assert events[0].id is not None and events[1].id is not None and events[0].id < events[1].id
    engine.dispose()
