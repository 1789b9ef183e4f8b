"""The command line loads a command's module only when that command runs or shows its own help
(orchestrator/apps/cli/lazy.py): `shipyard --help` lists every command from main.COMMANDS without importing
any of them, and each listed command still shows its own help. Seen in the modules a fresh process holds,
never in how long it takes (timings are bench/startup_bench.py's)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from orchestrator.apps.cli.main import COMMANDS, DATABASE_ERROR, USER_ERRORS, VALIDATION_ERROR, app

ROOT = Path(__file__).resolve().parents[2]
# The model clients, the workflow engine, the Docker SDK and the TUI's framework.
HEAVY = ("openai", "langchain", "langgraph", "docker", "textual")
# What every command needs but the list of commands does not: the settings, the store, the commands.
NOT_FOR_HELP = ("orchestrator.config", "orchestrator.store", "orchestrator.runtime", "orchestrator.engine",
                "sqlalchemy", "pydantic_settings", *(lazy.module for lazy in COMMANDS.values()))

_PROBE = """
import json, sys
sys.argv = ["shipyard", *sys.argv[1:]]
from orchestrator.apps.cli import main
try:
    main()
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(args: list[str], tmp_path: Path) -> tuple[set[str], str]:
    env = {**os.environ, "SHIPYARD_STATE_DIR": str(tmp_path / "state"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return set(json.loads(done.stderr.strip().splitlines()[-1])), done.stdout


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") or m.startswith(f"{p}_")
                                            for p in prefixes))


def test_help_imports_no_command(tmp_path: Path) -> None:
    modules, out = _modules_after(["--help"], tmp_path)
    assert "typer" in modules, "the probe saw the command's imports"
    for name, lazy in COMMANDS.items():
        if not lazy.hidden:
            assert f" {name} " in out, f"`shipyard --help` does not list {name}"
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, NOT_FOR_HELP) == []
    # Drawn without typer's renderer (it loads rich's Markdown and Traceback), from click's own objects.
    assert _loaded(modules, ("typer.rich_utils", "rich.markdown", "rich.traceback")) == []
    assert "Usage: shipyard [OPTIONS] COMMAND [ARGS]..." in out and "Shipyard: a planner fans your task" in out
    root = typer.main.get_group(app)
    for param in root.params:
        assert all(name in out for name in param.opts) and param.help.split()[0] in out, out


def test_a_command_loads_its_own_module_only(tmp_path: Path) -> None:
    modules, out = _modules_after(["config", "--help"], tmp_path)
    assert "Print the effective configuration" in out
    assert "orchestrator.apps.cli.config_commands" in modules
    assert _loaded(modules, ("orchestrator.apps.cli.job_commands", "orchestrator.apps.cli.eval_commands", *HEAVY)) \
        == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_is_the_commands_own(name: str) -> None:
    lazy = COMMANDS[name]
    command = lazy.load(name)
    assert (command.help, command.hidden) == (lazy.help, lazy.hidden), \
        f"main.COMMANDS says of {name} what its module does not"


def test_every_command_of_a_module_is_listed() -> None:
    for module in {lazy.module for lazy in COMMANDS.values() if not lazy.group}:
        for name in typer.main.get_group(importlib.import_module(module).app).commands:
            assert name in COMMANDS and COMMANDS[name].module == module, f"{module} has {name}: not in COMMANDS"


def test_user_errors_are_named_right() -> None:
    for module, name in (*USER_ERRORS, VALIDATION_ERROR, DATABASE_ERROR):
        assert issubclass(getattr(importlib.import_module(module), name), Exception), f"{module}.{name}"


def _paths() -> list[list[str]]:
    paths = []
    for name, lazy in COMMANDS.items():
        paths.append([name])
        if lazy.group:
            paths += [[name, sub] for sub in typer.main.get_group(importlib.import_module(lazy.module).app).commands]
    return paths


@pytest.mark.parametrize("path", _paths(), ids=" ".join)
def test_every_command_shows_its_help(path: list[str]) -> None:
    done = CliRunner().invoke(app, [*path, "--help"])
    assert done.exit_code == 0, done.output
    assert "Usage:" in done.output and " ".join(path) in done.output, done.output


def test_a_mistyped_command_is_still_suggested() -> None:
    done = CliRunner().invoke(app, ["jbos"])
    assert done.exit_code == 2
    assert "Did you mean 'jobs'?" in done.output
