"""Running a job in a process of its own, so that closing the TUI or the terminal never stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

from orchestrator.config.settings import Settings

# run: from wherever it stands; answer: on with the director's recorded answer to its plan;
# retry: its failed subtasks again.
Action = Literal["run", "answer", "retry"]


def launch(settings: Settings, job_id: str, action: Action = "run",
           repo: Path | None = None, subtasks: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start `shipyard work` for the job in a new session; its output goes to a log file.

    The process starts in `repo` (when given) so that it reads the same shipyard.toml. `subtasks`: the
    ones a retry runs again (default: every failed one).
    """
    log_dir = settings.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "orchestrator", "work", job_id, "--action", action]
    if subtasks:
        args += ["--subtasks", ",".join(subtasks)]
    env = {**os.environ, "SHIPYARD_STATE_DIR": str(settings.state_dir)}
    with open(log_dir / f"{job_id}.log", "ab") as log:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=repo or Path.cwd())
