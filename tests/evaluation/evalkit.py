"""Helpers of the evaluation tests: the models file for a scripted server, and the console script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from agents.scripted_model import ScriptedModelServer

# Prices for the scripted model, so that costs are exercised: USD per million tokens.
INPUT_PRICE, OUTPUT_PRICE = 0.4, 1.6


def models_toml(path: Path, server: ScriptedModelServer, extra: str = "") -> Path:
    path.write_text(f'[models.default]\nbase_url = "{server.base_url}"\nmodel = "scripted-mini-suite"\n'
                    f"input_price = {INPUT_PRICE}\noutput_price = {OUTPUT_PRICE}\n{extra}")
    return path


def shipyard_eval(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    shipyard = shutil.which("shipyard")
    assert shipyard, "the shipyard console script is not installed (pip install -e .)"
    return subprocess.run([shipyard, "eval", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
