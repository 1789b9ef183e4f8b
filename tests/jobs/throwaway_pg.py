"""A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl start on a free port, removed at the end.

It runs as the `postgres` user when started by root (initdb refuses root). Used by the
job tests (tests/jobs/conftest.py) and by bench/jobs_bench.py.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg

PG_BIN = Path(os.environ.get("SHIPYARD_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or None if one can."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN} (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"no '{PG_USER}' user to run PostgreSQL as"
    return None


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"postgresql://{PG_USER}@127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        if os.geteuid() == 0:
            shutil.chown(self.root, PG_USER)
        try:
            self._pg("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
            # fsync off: the cluster dies with the test run anyway.
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
            self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """The URL of a new, empty database on the cluster."""
        name = "t_" + secrets.token_hex(4)
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"

    def _pg(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, str(PG_BIN / tool), *args], check=True, capture_output=True, text=True)
