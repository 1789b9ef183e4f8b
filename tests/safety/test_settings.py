"""A job runs with the settings it was submitted with; bad settings are refused before there is a job."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable

import pytest
from helpers import call, git
from safekit import CHANGE, World, ended, interrupt_a_run, one_error_line, slow, wait_for

from agents.scripted_model import ScriptedModelServer
from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap


@pytest.fixture
def other_endpoint() -> ScriptedModelServer:
    """Where the defaults of another directory (or a worker's environment) would send a job's requests."""
    with ScriptedModelServer({"responses": [{"content": "wrong endpoint", "repeat": True}]}) as server:
        yield server


def _elsewhere(w: World, server: ScriptedModelServer) -> dict[str, str]:
    return {"SHIPYARD_MODELS__DEFAULT__BASE_URL": server.base_url, "SHIPYARD_MODELS__DEFAULT__MODEL": "other"}


def test_approve_from_another_directory_uses_the_jobs_own_settings(world: Callable[..., World],
                                                                  other_endpoint: ScriptedModelServer) -> None:
    w = world(CHANGE)
    assert w.shipyard("run", "add a note", "--repo", ".", "--approve-plan").returncode == 0
    job = w.only_job()
    approved = w.shipyard("approve", job.id, cwd=w.elsewhere, env=_elsewhere(w, other_endpoint))
    assert approved.returncode == 0, approved.stderr
    assert w.director().get(job.id).status == JobStatus.SUCCEEDED
    assert other_endpoint.requests == [], "nothing went to the other directory's endpoint"
    assert w.asked("coder") >= 1 and w.asked("reviewer") >= 1


def test_retry_from_another_directory_uses_the_jobs_own_settings(
        world: Callable[..., World], other_endpoint: ScriptedModelServer) -> None:
    failing_first = [CHANGE[0], {"match": {"role": "coder"}, "status": 400, "message": "no"}, *CHANGE[1:]]
    w = world(failing_first)
    failed = w.shipyard("run", "add a note", "--repo", ".")
    assert failed.returncode == 1
    job = w.only_job()
    retried = w.shipyard("retry", job.id, cwd=w.elsewhere, env=_elsewhere(w, other_endpoint))
    assert retried.returncode == 0, retried.stderr
    assert w.director().get(job.id).status == JobStatus.SUCCEEDED and other_endpoint.requests == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_resume_of_an_interrupted_job_from_another_directory_uses_the_jobs_own_settings(
        world: Callable[..., World], other_endpoint: ScriptedModelServer, sig: int) -> None:
    w = world(slow("coder"))
    job, code, err = interrupt_a_run(w, sig, within=20)
    assert code == 130 and f"shipyard resume {job.id}" in one_error_line(err)
    # The directory it is resumed from has a shipyard.toml of its own, naming another endpoint and model.
    (w.elsewhere / "shipyard.toml").write_text(f'[models.default]\nbase_url = "{other_endpoint.base_url}"\n'
                                               'model = "other"\nmax_retries = 0\n')
    resumed = w.shipyard("resume", job.id, cwd=w.elsewhere)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"job {job.id} succeeded" in resumed.stdout.splitlines()[-1]
    assert w.director().get(job.id).status == JobStatus.SUCCEEDED
    assert other_endpoint.requests == [], "nothing went to the other directory's endpoint"
    assert w.asked("coder") == 2 and w.asked("reviewer") == 1 and w.asked("planner") == 1
    assert {r.model for r in w.server.requests} == {"scripted"}


def test_a_worker_started_elsewhere_runs_the_job_with_its_own_settings(
        world: Callable[..., World], other_endpoint: ScriptedModelServer) -> None:
    w = world(CHANGE)
    job_id = w.shipyard("submit", "add a note", "--repo", ".").stdout.strip()
    worker = w.start("serve", cwd=w.elsewhere, env=_elsewhere(w, other_endpoint))
    try:
        wait_for(lambda: w.director().get(job_id).status.finished, 120, "the worker to run the job")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        ended(worker, 30)
    assert w.director().get(job_id).status == JobStatus.SUCCEEDED
    assert other_endpoint.requests == [] and w.asked("planner") == 1


@pytest.mark.parametrize(("toml", "says"), [
    ("[budgets]\nmax_cost_per_jbo = 1.0\n", "budgets.max_cost_per_jbo: Extra inputs are not permitted"),
    ("[sandbox.limits]\nmemry_mb = 512\n", "sandbox.limits.memry_mb: Extra inputs are not permitted"),
    ("[models.coder]\nmodel = \"x\"\nbase_url = \"localhost:11434\"\n", "is not an http:// or https:// URL"),
])
def test_bad_settings_are_one_line_and_leave_no_job(world: Callable[..., World], toml: str, says: str) -> None:
    w = world(CHANGE)
    (w.repo / "shipyard.toml").write_text((w.repo / "shipyard.toml").read_text() + "\n" + toml)
    refused = w.shipyard("run", "add a note", "--repo", ".")
    assert refused.returncode == 2 and says in one_error_line(refused.stderr)
    assert w.director().list() == []


@pytest.mark.parametrize(("table", "who"), [("models.reviewer", "reviewer"), ("context.summarizer", "summarizer")])
def test_a_missing_api_key_is_said_before_any_job_or_branch_exists(world: Callable[..., World], table: str,
                                                                   who: str) -> None:
    w = world(CHANGE)
    (w.repo / "shipyard.toml").write_text((w.repo / "shipyard.toml").read_text() + f'\n[{table}]\n'
                                          'model = "gpt-4.1"\n')
    refused = w.shipyard("run", "add a note", "--repo", ".")
    assert refused.returncode == 2
    assert f"no API key for the {who} model gpt-4.1: $OPENAI_API_KEY is not set" in one_error_line(refused.stderr)
    assert w.director().list() == []
    assert git(w.repo, "for-each-ref", "refs/heads/shipyard*") == ""


def test_a_missing_configured_image_and_a_full_disk_are_refused_at_submit(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    image = w.shipyard("run", "add a note", "--repo", ".",
                       env={"SHIPYARD_SANDBOX__BACKEND": "auto", "SHIPYARD_SANDBOX__IMAGE": "no-such-image:9"})
    assert image.returncode == 2 and "no-such-image:9" in one_error_line(image.stderr)
    disk = w.shipyard("run", "add a note", "--repo", ".", env={"SHIPYARD_SANDBOX__LIMITS__MIN_FREE_MB": "999999999"})
    assert disk.returncode == 2 and "MB free" in one_error_line(disk.stderr)
    assert w.director().list() == []


def test_config_show_masks_secrets_but_not_numbers(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    shown = w.shipyard("config", "show", env={"SHIPYARD_DATABASE_URL": "postgresql://me:hunter2@db/shipyard"})
    assert shown.returncode == 0, shown.stderr
    assert '"max_tokens_per_agent": 2000000' in shown.stdout
    assert "hunter2" not in shown.stdout and "me:****@db" in shown.stdout


def test_max_cost_applies_to_an_endpoint_that_reports_no_usage(world: Callable[..., World]) -> None:
    no_usage = {"omit_usage": True}
    script = [
        {**CHANGE[0], "quirks": no_usage},
        {"match": {"role": "coder"}, "quirks": no_usage, "repeat": True,
         "tool_calls": [call("list_files", path=".")]},
    ]
    w = world(script)
    priced = {"SHIPYARD_MODELS__DEFAULT__INPUT_PRICE": "100", "SHIPYARD_MODELS__DEFAULT__OUTPUT_PRICE": "100"}
    ran = w.shipyard("run", "add a note", "--repo", ".", "--max-cost", "0.5", env=priced)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    job = w.only_job()
    assert re.fullmatch(rf"job {job.id} failed: job budget spent \(\$\d+\.\d{{4}} of \$0\.5000\)",
                        ran.stdout.splitlines()[-1]), repr(ran.stdout[-300:])
    record = w.director().get(job.id)
    assert record.status == JobStatus.FAILED and record.error and record.error.startswith("job budget spent")
    total = record.report["total"]
    # Every call's tokens were counted here (none reported), priced, and summed up to the cap.
    assert total["estimated_calls"] == total["calls"] == len(w.server.requests) and total["unpriced_calls"] == 0
    assert total["cost"] >= 0.5 and total["input_tokens"] > 0
    assert w.asked("coder") < 10, "the coder stopped at the budget, long before its step limit"
