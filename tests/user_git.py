"""The tests' own git calls (building users' repositories, checking results), blind to the machine's config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TEST_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "User",
    "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "User",
    "GIT_COMMITTER_EMAIL": "user@example.com",
}


def git(cwd: Path, *args: str) -> str:
    """`git -C cwd args...`'s output, stripped; CalledProcessError when it fails."""
    done = subprocess.run(["git", "-C", str(cwd), *args], env=TEST_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()
