"""Fixtures for the job tests: a throwaway PostgreSQL cluster (a database of its own for every test),
and deployments of workers on it or on the SQLite default."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import Deployment, quick_script
from throwaway_pg import ThrowawayPostgres, unavailable_reason

# CI installs PostgreSQL and sets this: a skipped Postgres test then counts as a failure.
REQUIRE_FLAG = "SHIPYARD_REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """A running throwaway cluster for the whole test session."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_FLAG):
            pytest.fail(f"PostgreSQL is required here ({REQUIRE_FLAG} is set) but {reason}")
        pytest.skip(reason)
    with ThrowawayPostgres() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_server: ThrowawayPostgres) -> str:
    """A fresh, empty database on the throwaway cluster."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str | None:
    """Each test that takes it runs on the SQLite default and on PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Make a Deployment; it is torn down (and its worker logs shown on failure) at the end."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    made: list[Deployment] = []

    def make(database_url: str | None, script: dict[str, Any] | None = None, **settings: str) -> Deployment:
        made.append(Deployment(tmp_path, database_url, script or quick_script(), **settings))
        return made[-1]

    yield make
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    for deployment in made:
        logs = deployment.close(failed)
        if failed:
            print("\n".join(logs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


