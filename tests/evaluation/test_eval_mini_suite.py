"""`shipyard eval --mini-suite` end to end: scripted model over HTTP, bubblewrap or docker sandboxes, real git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalkit import INPUT_PRICE, OUTPUT_PRICE, models_toml, shipyard_eval

from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.evaluation import mini_suite
from sandboxes.docker_backend import DockerBackend


@pytest.mark.bubblewrap
def test_mini_suite_resolves_six_of_eight_and_a_rerun_skips_them(
        tmp_path: Path, bubblewrap: str, mini_suite_server: ScriptedModelServer) -> None:
    models = models_toml(tmp_path / "models.toml", mini_suite_server)
    out = tmp_path / "out"
    args = ("--mini-suite", "--models", models, "--workers", "2", "--backend", bubblewrap, "--output", out)

    first = shipyard_eval(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "6 of 8 resolved (75.0%)" in " ".join(first.stdout.split())
    assert mini_suite_server.pending == []  # every scripted answer was asked for

    report = json.loads((out / "results.json").read_text())
    summary = report["summary"]
    assert (summary["resolved"], summary["unresolved"], summary["errors"]) == (mini_suite.EXPECTED_RESOLVED, 2, 0)
    results = {r["instance_id"]: r for r in report["results"]}
    # The right patch, written on top of the agent's own edits to the hidden tests' file.
    calc_1 = results["shipyard-mini__calc-1"]
    assert calc_1["status"] == "resolved" and calc_1["job_status"] == "succeeded"
    assert "test_median_of_an_even_count" not in (out / "instances/shipyard-mini__calc-1/tests.log").read_text()
    # A wrong patch: its job succeeded, its hidden FAIL_TO_PASS tests fail.
    calc_3 = results["shipyard-mini__calc-3"]
    assert calc_3["status"] == "unresolved" and calc_3["job_status"] == "succeeded"
    assert set(calc_3["tests"]["fail_to_pass"].values()) == {"failed"}
    assert set(calc_3["tests"]["pass_to_pass"].values()) == {"passed"}
    # A patch that fixes the issue and breaks a PASS_TO_PASS test.
    textkit_3 = results["shipyard-mini__textkit-3"]
    assert textkit_3["status"] == "unresolved"
    assert textkit_3["tests"]["fail_to_pass"] == {"tests/test_case.py::test_title_case_small_words": "passed"}
    assert textkit_3["tests"]["pass_to_pass"]["tests/test_case.py::test_title_case_keeps_acronyms"] == "failed"

    # Tokens and cost per instance and in total, as the model server and the prices say.
    # A call the SDK sent again (a connection dropped on a busy machine) is one call, however many requests.
    first_tries = [r for r in mini_suite_server.requests if r.headers.get("x-stainless-retry-count", "0") == "0"]
    assert summary["calls"] == len(first_tries), [(r.seq, r.role, r.status, r.headers) for r in
                                                  mini_suite_server.requests if r not in first_tries]
    for result in results.values():
        assert result["input_tokens"] > 0 and result["wall_seconds"] > 0
        expected = (result["input_tokens"] * INPUT_PRICE + result["output_tokens"] * OUTPUT_PRICE) / 1e6
        assert result["cost"] == pytest.approx(expected, rel=1e-3)
    assert summary["cost"] == pytest.approx(sum(r["cost"] for r in results.values()), rel=1e-3)

    table = (out / "results.md").read_text()
    assert "**6 of 8 resolved (75.0%)**" in table
    assert "| shipyard-mini__calc-3 | unresolved | 0/2 | 2/2 |" in table
    assert "| shipyard-mini__textkit-3 | unresolved | 1/1 | 1/2 |" in table
    assert "| **total** | **6/8 resolved** |" in table
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 8 and all(p["model_patch"].startswith("diff --git") for p in predictions)

    requests = len(mini_suite_server.requests)
    again = shipyard_eval(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    said = " ".join(again.stdout.split())  # the console wraps to the terminal's width
    assert "8 done already, running 0" in said and "6 of 8 resolved" in said
    assert len(mini_suite_server.requests) == requests


@pytest.mark.bubblewrap
def test_reference_patches_resolve_every_instance(tmp_path: Path, bubblewrap: str) -> None:
    """The suite itself is sound: every gold patch passes its hidden tests (no model involved)."""
    result = shipyard_eval("--mini-suite", "--gold", "--backend", bubblewrap, "-o", tmp_path / "gold", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "8 of 8 resolved" in " ".join(result.stdout.split())


@pytest.mark.docker
def test_mini_suite_in_docker(tmp_path: Path, mini_suite_server: ScriptedModelServer) -> None:
    found = DockerBackend().availability("shipyard-sandbox:latest")
    if not found.ok:
        pytest.skip(found.detail)
    models = models_toml(tmp_path / "models.toml", mini_suite_server)
    result = shipyard_eval("--mini-suite", "--models", models, "--backend", "docker", "--workers", "2",
                           "-i", "shipyard-mini__calc-1", "-i", "shipyard-mini__textkit-3", "-o", tmp_path / "out",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "out/results.json").read_text())["summary"]
    assert (summary["instances"], summary["resolved"], summary["unresolved"]) == (2, 1, 1)
