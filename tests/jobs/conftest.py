"""A throwaway PostgreSQL cluster for the job tests, and helpers to run workers as real processes.

The cluster is initdb'ed into a temp dir and started with pg_ctl as the `postgres`
user (initdb refuses root); every test gets a database of its own on it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("SHIPYARD_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
# CI installs PostgreSQL and sets this: a skipped Postgres test then counts as a failure.
REQUIRE_FLAG = "SHIPYARD_REQUIRE_POSTGRES"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_pg_user(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_FLAG):
        pytest.fail(f"PostgreSQL is required here ({REQUIRE_FLAG} is set) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a running throwaway cluster (without a database name)."""
    if not (PG_BIN / "initdb").exists():
        _unavailable(f"no PostgreSQL binaries in {PG_BIN}")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            _unavailable(f"no '{PG_USER}' user to run PostgreSQL as")
    root = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, PG_USER)
    port = _free_port()
    _as_pg_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    _as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"])
    try:
        yield f"postgresql://{PG_USER}@127.0.0.1:{port}"
    finally:
        _as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the throwaway cluster."""
    import psycopg

    name = "t_" + secrets.token_hex(4)
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


class Worker:
    """A `shipyard serve` process; its output goes to a log file kept for failures."""

    def __init__(self, env: dict[str, str], log: Path, *args: str):
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "serve", *args],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the worker and whatever it started (sandboxes), as a crash would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Worker]]:
    """Started workers, stopped at the end; their logs are printed when a test fails."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for worker in started:
            print(f"--- {worker.log}\n{worker.log.read_text(errors='replace')[-6000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def wait_for(condition, timeout: float, what: str, poll: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll `condition` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")
