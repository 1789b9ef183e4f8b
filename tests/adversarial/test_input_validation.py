"""Input validation: every CLI argument, config file and webhook payload is checked, and a bad one gets a
clear one-line error, never a traceback. The config loader and the webhook endpoint are fuzzed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from helpers import make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.apps.cli.main import main as shipyard_main
from orchestrator.config.settings import ConfigError, Settings, load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import JobStatus, Task

REPO_ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=int(os.environ.get("SHIPYARD_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=list(HealthCheck))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`shipyard ARGS` in this process (the real entry point); its exit code and stderr."""
    saved = sys.argv
    sys.argv = ["shipyard", *args]
    try:
        shipyard_main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return code, capsys.readouterr().err


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A state dir with a job waiting for plan approval, and a repo."""
    monkeypatch.setenv("SHIPYARD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"})
    runner = Director(load_settings(tmp_path))
    job = runner.records.jobs.create(Task(instruction="x", repo=str(repo), base="main", approve_plan=True))
    runner.records.jobs.update(job.id, JobStatus.AWAITING_APPROVAL)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "badplan.json").write_text(json.dumps({"summary": 3, "subtasks": [{"id": "BAD ID"}]}))
    (tmp_path / "cyclic.json").write_text(json.dumps({"summary": "s", "subtasks": [
        {"id": "a", "title": "a", "instructions": "a", "depends_on": ["b"]},
        {"id": "b", "title": "b", "instructions": "b", "depends_on": ["a"]}]}))
    (tmp_path / "notarepo").mkdir()
    return {"repo": str(repo), "job": job.id, "dir": tmp_path}


BAD_INVOCATIONS = [
    ["--bogus"],
    ["no-such-command"],
    ["run"],
    ["run", "x", "--candidates", "0"],
    ["run", "x", "--candidates", "many"],
    ["run", "x", "--max-cost", "-1"],
    ["run", "x", "--max-cost", "nan"],
    ["run", "", "--repo", "{repo}"],
    ["run", "x", "--repo", "/nonexistent/repo"],
    ["run", "x", "--repo", "{dir}/notarepo"],
    ["run", "x", "--repo", "{repo}", "--base", "no-such-ref"],
    ["run", "x", "--repo", "{repo}", "--base", "--upload-pack=touch /tmp/pwned"],
    ["submit", "x", "--repo", "/nonexistent/repo"],
    ["jobs", "--status", "bogus"],
    ["show", "no-such-job"],
    ["logs"],
    ["diff", "{job}"],
    ["resume", "no-such-job"],
    ["cancel", "no-such-job"],
    ["accept", "{job}", "--yes"],
    ["approve", "{job}", "--plan", "{dir}/missing.json"],
    ["approve", "{job}", "--plan", "{dir}/bad.json"],
    ["approve", "{job}", "--plan", "{dir}/binary.json"],
    ["approve", "{job}", "--plan", "{dir}/badplan.json"],
    ["approve", "{job}", "--plan", "{dir}/cyclic.json"],
    ["reject", "no-such-job"],
    ["export", "{job}", "--output", "/nonexistent/dir/out.jsonl"],
    ["prune", "--older-than", "soon"],
    ["retry", "no-such-job"],
    ["retry", "{job}"],
    ["result", "no-such-job"],
    ["note", "no-such-job", "hello"],
    ["inbox", "--db", "mysql://nowhere/db"],
    ["serve", "--concurrency", "0"],
    ["serve", "--db", "not-a-database-url"],
    ["eval", "--workers", "0"],
    ["eval", "--models", "{dir}/missing.toml"],
    ["demo", "--backend", "podman", "--dir", "{dir}/demo"],
    ["scripted-model", "serve", "{dir}/missing.yaml"],
    ["scripted-model", "serve", "{dir}/badplan.json"],
    ["sandbox", "doctor", "--bogus"],
    ["sandbox", "build", "--dockerfile", "{dir}/no-such-dir"],
    ["github", "serve", "--bogus"],
    ["config", "show", "--bogus"],
    ["tui", "--bogus"],
]


@pytest.mark.parametrize("args", BAD_INVOCATIONS, ids=lambda a: " ".join(a)[:60] or "(none)")
def test_bad_command_lines_get_a_one_line_error(args: list[str], state: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli([a.format(**state) for a in args], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not Path("/tmp/pwned").exists()


def test_a_bad_config_file_is_one_line_from_the_command_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"shipyard.toml": "[sandbox]\nbackend = 'podman'\n"})
    env = {**os.environ, "SHIPYARD_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO_ROOT)}
    shown = subprocess.run([sys.executable, "-m", "orchestrator", "jobs"], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 2 and "Traceback" not in shown.stderr
    assert [line for line in shown.stderr.splitlines() if line.strip()] == [shown.stderr.strip()]
    assert "sandbox.backend" in shown.stderr and "shipyard.toml" in shown.stderr


# --- the config loader, fuzzed ------------------------------------------------------

KEYS = {
    "": ["state_dir", "database_url", "test_command", "setup_command", "sandbox", "environment", "models", "budgets",
         "workers", "notifications", "candidate_models", "unknown_key"],
    "environment": ["network", "env", "timeout", "extra"],
    "sandbox": ["backend", "image", "dockerfile", "network", "limits", "extra"],
    "sandbox.limits": ["memory_mb", "cpus", "pids", "tmp_mb", "exec_timeout", "output_limit", "min_free_mb"],
    "models": ["default", "planner", "coder", "test_fixer", "reviewer", "critic"],
    "model": ["base_url", "model", "api_key_env", "temperature", "max_tokens", "timeout", "max_retries", "stream",
              "input_price", "output_price", "colour"],
    "budgets": ["max_cost_per_job", "max_cost_per_agent", "max_tokens_per_agent", "max_steps_per_agent",
                "max_seconds_per_agent"],
    "workers": ["concurrency", "heartbeat", "lease", "poll"],
    "notifications": ["webhook_url", "webhook_attempts", "webhook_timeout", "command"],
}

scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["auto", "docker", "bubblewrap", "local", "gpt-4o", "", "-1", "1e400",
                                           "postgresql://u:p@h/db", "sqlite:///x", "http://127.0.0.1:1/v1"]),
    st.datetimes(), st.dates(),
)


def _table(path: str, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    keys = KEYS["model"] if path.startswith("models.") else KEYS.get(path, ["x"])
    if depth <= 0:
        return st.dictionaries(st.sampled_from(keys), scalars, max_size=4)

    def value(key: str) -> st.SearchStrategy[Any]:
        child = f"{path}.{key}".lstrip(".")
        if child in KEYS or child.startswith("models."):
            return st.one_of(_table(child, depth - 1), scalars)
        return st.one_of(scalars, st.lists(scalars, max_size=3))

    return st.dictionaries(st.sampled_from(keys), st.none(), max_size=5).flatmap(
        lambda chosen: st.fixed_dictionaries({k: value(k) for k in chosen}))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is JSON's, escapes included
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()


def to_toml(data: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(key)} = {_toml_value(value)}" for key, value in data.items()) + "\n"


def _load(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "shipyard.toml")
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            loaded = load_settings(Path(tmp))
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(exc).strip(), repr(str(exc))
            return
        assert isinstance(loaded, Settings)


@FUZZ
@given(_table("", 3))
def test_fuzzed_config_files_load_or_fail_with_a_one_line_config_error(data: dict[str, Any]) -> None:
    _load(to_toml(data))


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_fuzzed_config_bytes_load_or_fail_with_a_one_line_config_error(raw: bytes | str) -> None:
    _load(raw)


@FUZZ
@given(st.dictionaries(st.sampled_from([
    "SHIPYARD_STATE_DIR", "SHIPYARD_SANDBOX__BACKEND", "SHIPYARD_SANDBOX__LIMITS__MEMORY_MB", "SHIPYARD_MODELS",
    "SHIPYARD_MODELS__DEFAULT__MODEL", "SHIPYARD_MODELS__CODER__TIMEOUT", "SHIPYARD_BUDGETS__MAX_COST_PER_JOB",
    "SHIPYARD_WORKERS__LEASE", "SHIPYARD_CANDIDATE_MODELS", "SHIPYARD_SANDBOX", "SHIPYARD_NOTIFICATIONS__COMMAND",
]), st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=30),
    max_size=4))
def test_fuzzed_environment_variables_load_or_fail_with_a_one_line_config_error(env: dict[str, str]) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        _load("")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the GitHub webhook endpoint, fuzzed ------------------------------------------------

SECRET = "an adversarial webhook secret"
PAYLOADS = REPO_ROOT / "tests" / "github" / "payloads"

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _mutate(data: Any, draw: Any) -> Any:
    """A stored payload with one field somewhere replaced by something else."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data)))
        return {**data, key: _mutate(data[key], draw)}
    if isinstance(data, list) and data and draw(st.booleans()):
        index = draw(st.integers(0, len(data) - 1))
        return [*data[:index], _mutate(data[index], draw), *data[index + 1:]]
    return draw(json_values)


@st.composite
def deliveries(draw: Any) -> tuple[str, bytes]:
    stored = sorted(PAYLOADS.glob("*.json"))
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a real payload with a field changed
        path = draw(st.sampled_from(stored))
        return path.name.split(".")[0], json.dumps(_mutate(json.loads(path.read_text()), draw)).encode()
    if kind == 1:  # any JSON under any event name
        event = draw(st.sampled_from(["issues", "issue_comment", "pull_request_review_comment", "installation",
                                      "ping", "push"]) | st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                                 max_size=12))
        return event, json.dumps(draw(json_values)).encode()
    if kind == 2:  # bytes that are not JSON, or not UTF-8
        return draw(st.sampled_from(["issues", "issue_comment"])), draw(st.binary(max_size=200))
    depth = draw(st.integers(500, 200_000))  # nesting deep enough to break a recursive parser
    return "issues", b"[" * depth + b"]" * depth


@pytest.fixture(scope="module")
def webhook() -> Any:
    github = pytest.importorskip("orchestrator.apps.github.webhook", reason="the GitHub App is not in this tree")
    from starlette.testclient import TestClient

    from orchestrator.apps.github.records import Records
    from orchestrator.store.db import open_store

    with tempfile.TemporaryDirectory() as tmp:
        records = Records(open_store(f"sqlite:///{tmp}/github.db"))
        with TestClient(github.create_app(SECRET, records, lambda: None)) as client:
            yield client


@FUZZ
@given(deliveries(), st.uuids())
def test_fuzzed_webhook_deliveries_get_a_clear_4xx_never_a_crash(webhook: Any, delivery: tuple[str, bytes],
                                                                  delivery_id: Any) -> None:
    from orchestrator.apps.github.signature import sign

    event, body = delivery
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(delivery_id),
               "X-Hub-Signature-256": sign(SECRET, body), "Content-Type": "application/json"}
    answer = webhook.post("/webhook", content=body, headers=headers)
    assert answer.status_code in (200, 202, 400, 409), (answer.status_code, answer.text[:300])
    if answer.status_code == 400:
        message = answer.json()["error"]
        assert message and "\n" not in message, message
    unsigned = webhook.post("/webhook", content=body, headers={**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert unsigned.status_code == 401
