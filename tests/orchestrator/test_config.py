"""Configuration: files and env vars in order of precedence, clear errors, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from orchestrator.config.settings import ConfigError, Settings, load_settings, masked


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_repo_file_overrides_user_file_and_env_overrides_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(Path(os.environ["XDG_CONFIG_HOME"]) / "shipyard" / "shipyard.toml",
           '[sandbox]\nbackend = "docker"\nimage = "user-image"\n[models.default]\nmodel = "gpt-4.1-mini"\n')
    _write(tmp_path / "shipyard.toml",
           '[sandbox]\nimage = "repo-image"\n[sandbox.limits]\nmemory_mb = 1024\n'
           '[models.coder]\nbase_url = "http://localhost:11434/v1"\nmodel = "qwen2.5-coder:7b"\n')
    monkeypatch.setenv("SHIPYARD_SANDBOX__LIMITS__PIDS", "99")
    settings = load_settings(tmp_path)
    assert settings.sandbox.backend == "docker"  # user file
    assert settings.sandbox.image == "repo-image"  # repo file wins over the user file
    assert settings.sandbox.limits.memory_mb == 1024 and settings.sandbox.limits.pids == 99  # env var
    assert settings.model_for("coder").model == "qwen2.5-coder:7b"
    assert settings.model_for("planner").model == "gpt-4.1-mini"  # falls back to default


@pytest.mark.parametrize(("text", "message"), [
    ('sandbox = "x', "not valid TOML"),
    ('[sandbox]\nbackend = "podman"\n', "sandbox.backend"),
    ('[models.architect]\nmodel = "x"\n', "unknown model role"),
    ('colour = "blue"\n', "colour"),
    ('[context]\nkeep_observation = 2\n', "context.keep_observation"),
    ('[mcp.servers.docs]\ncommand = "docs-server"\nport = 1\n', "mcp.servers.docs.port"),
    ('[mcp.servers.docs]\nurl = "https://docs.example/mcp"\n', "allow_http = true"),
    ('[mcp.servers.docs]\ncommand = "a"\nurl = "https://docs.example/mcp"\n', "either a command"),
    ('[mcp.servers."my docs"]\ncommand = "a"\n', "letters, digits"),
    ('[mcp.servers.docs]\ncommand = "a"\nroles = ["architect"]\n', "mcp.servers.docs.roles"),
])
def test_bad_configuration_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    _write(tmp_path / "shipyard.toml", text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(tmp_path)
    assert "\n" not in str(raised.value)


def test_context_and_mcp_tables(tmp_path: Path) -> None:
    _write(tmp_path / "shipyard.toml",
           '[context]\ndefault_window = 65536\nkeep_observations = 5\n'
           '[context.summarizer]\nmodel = "gpt-4.1-nano"\n'
           '[mcp]\nallow_http = true\n'
           '[mcp.servers.docs]\ncommand = "docs-server"\nargs = ["--stdio"]\nroles = ["planner", "coder"]\n'
           '[mcp.servers.tickets]\nurl = "https://tickets.example/mcp"\n')
    settings = load_settings(tmp_path)
    assert settings.context.default_window == 65536 and settings.context.keep_observations == 5
    assert settings.context.summarizer is not None and settings.context.summarizer.model == "gpt-4.1-nano"
    assert list(settings.mcp.for_role("planner")) == ["docs"]
    assert list(settings.mcp.for_role("coder")) == ["docs", "tickets"]  # as configured, for a stable prefix
    assert list(settings.mcp.for_role("reviewer")) == []


def test_secrets_are_masked() -> None:
    shown = masked({"api_key": "sk-123", "api_key_env": "OPENAI_API_KEY",
                    "database_url": "postgresql://me:hunter2@db/shipyard", "nested": {"github_token": "ghp_x"}})
    assert shown["api_key"] == "****" and shown["api_key_env"] == "OPENAI_API_KEY"
    assert shown["database_url"] == "postgresql://me:****@db/shipyard"
    assert shown["nested"]["github_token"] == "****"


def _shipyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    _write(tmp_path / "shipyard.toml", '[sandbox]\nbackend = "podman"\n')
    result = _shipyard("config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid configuration") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "shipyard.toml").unlink()
    result = _shipyard("run", "do it", "--repo", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_config_show_and_help(tmp_path: Path) -> None:
    result = _shipyard("config", "show", cwd=tmp_path)
    assert result.returncode == 0 and '"backend": "auto"' in result.stdout
    assert _shipyard("--help", cwd=tmp_path).returncode == 0


def _tables(model: type[BaseModel], path: str = "") -> list[str]:
    """The TOML header of every table the settings can hold: nested ones, one entry of each keyed table, one
    element of each array of tables."""
    found = []
    for name, field in model.model_fields.items():
        where = f"{path}{name}"
        optional = typing.get_origin(field.annotation) in (typing.Union, types.UnionType)
        for arg in typing.get_args(field.annotation) if optional else [field.annotation]:
            origin, args = typing.get_origin(arg), typing.get_args(arg)
            inner = args[-1] if origin in (dict, list) else arg
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                continue
            if origin is dict:
                where = f"{where}.{'default' if name == 'models' else 'probe'}"
            if origin is list:
                found.append(f"[[{where}]]")
                continue  # what an element holds is checked through the same model's table elsewhere
            found += [f"[{where}]", *_tables(inner, f"{where}.")]
    return sorted(set(found))


def test_every_settings_table_refuses_a_key_it_does_not_know(tmp_path: Path) -> None:
    tables = _tables(Settings)
    assert {"[sandbox]", "[sandbox.limits]", "[models.default]", "[context]", "[context.summarizer]", "[mcp]",
            "[mcp.servers.probe]", "[environment]", "[workers]", "[notifications]", "[github]", "[budgets]",
            "[[candidate_models]]"} <= set(tables)
    for header in ["", *tables]:
        (tmp_path / "shipyard.toml").write_text(f"{header}\nnot_a_setting = 1\n")
        with pytest.raises(ConfigError, match="not_a_setting") as refused:
            load_settings(tmp_path)
        assert "\n" not in str(refused.value), f"{header}: {refused.value}"
