"""Fixtures for the GitHub App tests: the App's key, and a whole deployment around a fake GitHub."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from appkit import FakeClock, GitHubWorld
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from helpers import call as tool_call
from jobs.jobkit import Deployment, quick_script
from jobs.throwaway_pg import ThrowawayPostgres, unavailable_reason


@pytest.fixture(scope="session")
def app_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("SHIPYARD_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here (SHIPYARD_REQUIRE_POSTGRES is set) but {reason}")
        pytest.skip(reason)
    with ThrowawayPostgres() as cluster:
        yield cluster


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[GitHubWorld]:
    """The App serving a fake GitHub; tests that run jobs start workers with `world.deployment.start_worker()`.
    On SQLite, or on PostgreSQL with `@pytest.mark.parametrize("world", ["postgres"], indirect=True)`."""
    database = None
    if getattr(request, "param", "sqlite") == "postgres":
        database = request.getfixturevalue("postgres_server").create_database()
    yield from _world(request, tmp_path, app_key, quick_script(latency=0.1), database=database)


@pytest.fixture
def busy_world(request: pytest.FixtureRequest, tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[GitHubWorld]:
    """The same, with a worker that runs five jobs at once, and coders slow enough for the jobs to overlap."""
    yield from _world(request, tmp_path, app_key, quick_script(latency=0.1, coder_latency=2.0),
                      WORKERS__CONCURRENCY="5")


@pytest.fixture
def failing_world(request: pytest.FixtureRequest, tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[GitHubWorld]:
    """The same, with a coder that never makes a change: every job fails."""
    script = quick_script(latency=0.1)
    script["responses"] = [r for r in script["responses"] if r["match"]["role"] != "coder"]
    script["responses"].append({"match": {"role": "coder"}, "repeat": True, "content": "I cannot do this."})
    yield from _world(request, tmp_path, app_key, script)


@pytest.fixture
def clocked_world(request: pytest.FixtureRequest, tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[GitHubWorld]:
    """The App on a clock the test moves on by hand (`world.clock.advance`), for waits of minutes or hours."""
    yield from _world(request, tmp_path, app_key, quick_script(latency=0.1), clock=FakeClock())


@pytest.fixture
def ci_world(request: pytest.FixtureRequest, tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[GitHubWorld]:
    """The same, with a model that knows what to do when a check fails: a job asked to make a failing check pass
    plans one subtask, and its coder adds FIX.md."""
    script = quick_script(latency=0.1)
    fix = [
        {"match": {"role": "planner", "any_message_contains": "make the failing check"}, "repeat": True,
         "tool_calls": [tool_call("submit_plan", summary="Fix the check.", subtasks=[{
             "id": "s1", "title": "Fix the check", "instructions": "Create FIX.md", "files": ["FIX.md"],
             "acceptance": ["FIX.md exists"]}])]},
        {"match": {"role": "coder", "last_role": "user", "any_message_contains": "Create FIX.md"}, "repeat": True,
         "tool_calls": [tool_call("create_file", path="FIX.md", content="fixed\n")]},
    ]
    script["responses"] = fix + script["responses"]
    yield from _world(request, tmp_path, app_key, script)


@pytest.fixture
def needs_bubblewrap() -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")


def _world(request: pytest.FixtureRequest, root: Path, key: RSAPrivateKey, script: dict[str, Any],
           database: str | None = None, clock: FakeClock | None = None, **settings: str) -> Iterator[GitHubWorld]:
    deployment = Deployment(root, database, script, **settings)
    made = GitHubWorld(root, deployment, key, clock)
    yield made
    made.close()
    logs = deployment.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\n".join(logs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:  # type: ignore[misc]
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]

