"""The runner on its own instances: local repos by path, errors kept and retried, jobs resumed, runs not mixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from evalkit import models_toml, shipyard_eval
from helpers import git, make_repo

from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.evaluation import mini_suite
from orchestrator.apps.evaluation.instances import load_instances
from orchestrator.apps.evaluation.runner import EvalOptions, EvalRunner
from orchestrator.config.settings import load_settings

GOLD = ("diff --git a/greet.py b/greet.py\n--- a/greet.py\n+++ b/greet.py\n@@ -1,2 +1,2 @@\n def greet(name):\n"
        "-    return 'hello ' + name\n+    return f'Hello, {name}!'\n")
TESTS = ("diff --git a/test_greet.py b/test_greet.py\nnew file mode 100644\n--- /dev/null\n+++ b/test_greet.py\n"
         "@@ -0,0 +1,5 @@\n+from greet import greet\n+\n+\n+def test_greet():\n"
         "+    assert greet('Ann') == 'Hello, Ann!'\n")


def greet_repo(path: Path) -> str:
    make_repo(path, {"greet.py": "def greet(name):\n    return 'hello ' + name\n", "pytest.ini": "[pytest]\n"})
    return git(path, "rev-parse", "HEAD").strip()


def instance(instance_id: str, base: str, test_patch: str = TESTS, test: str = "test_greet.py::test_greet",
             **where: str) -> str:
    return json.dumps({"instance_id": instance_id, "repo": "local/greet", **where, "base_commit": base,
                       "problem_statement": "Greet politely.", "patch": GOLD, "test_patch": test_patch,
                       "FAIL_TO_PASS": json.dumps([test]), "PASS_TO_PASS": "[]"})


@pytest.mark.bubblewrap
def test_errors_are_recorded_then_retried_and_a_test_patch_that_does_not_apply_fails(
        tmp_path: Path, bubblewrap: str) -> None:
    data = tmp_path / "data"
    base = greet_repo(data / "greet")
    broken = TESTS.replace("new file mode 100644\n--- /dev/null", "--- a/test_greet.py")
    file = data / "instances.jsonl"
    file.write_text("\n".join([
        instance("ok-1", base, repo_path="greet"),  # relative to the instances file
        instance("url-1", base, repo_url=(data / "greet").as_uri()),  # cloned into the output dir
        instance("later-1", base, repo_path="missing"),
        instance("broken-1", base, broken, repo_path="greet"),
        instance("django-1", base, test="test_greet (greet.tests.GreetTests)", repo_path="greet"),  # not pytest's
    ]) + "\n")
    settings = load_settings(tmp_path)
    settings = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(update={"backend": bubblewrap})})
    instances = load_instances(file)
    runner = EvalRunner(settings, EvalOptions(output=tmp_path / "out", gold=True), file)

    first = {r.instance_id: r for r in runner.run(instances).results}
    assert first["ok-1"].status == "resolved" and first["url-1"].status == "resolved"
    assert list((tmp_path / "out/repos").glob("greet-*.git"))
    assert first["later-1"].status == "error" and "missing: no such directory" in (first["later-1"].error or "")
    assert first["broken-1"].status == "unresolved"
    assert first["broken-1"].tests and "the test patch does not apply" in (first["broken-1"].tests.problem or "")
    assert first["django-1"].status == "unresolved" and first["django-1"].tests
    assert "the output names none of the tests" in (first["django-1"].tests.problem or "")

    git(data, "clone", "-q", str(data / "greet"), str(data / "missing"))  # the repo turns up
    second = runner.run(instances)
    assert {r.instance_id: r.status for r in second.results} == {
        "ok-1": "resolved", "url-1": "resolved", "later-1": "resolved", "broken-1": "unresolved",
        "django-1": "unresolved"}
    assert second.summary.resolved == 3 and second.summary.errors == 0
    assert "| later-1 | resolved | 1/1 | 0/0 |" in (tmp_path / "out/results.md").read_text()


@pytest.mark.bubblewrap
def test_a_job_stopped_by_an_error_resumes_from_its_checkpoint(tmp_path: Path, bubblewrap: str) -> None:
    """The planner's endpoint fails once: the instance is an error; the re-run continues the same job."""
    script = yaml.safe_load(mini_suite.SCRIPT.read_text())
    script["responses"].insert(0, {"match": {"role": "planner"}, "status": 500, "message": "overloaded"})
    with ScriptedModelServer(script) as server:
        models = models_toml(tmp_path / "models.toml", server, extra="max_retries = 0\n")
        args = ("--mini-suite", "--models", models, "-i", "shipyard-mini__units-1", "--backend", bubblewrap,
                "-o", tmp_path / "out")
        first = shipyard_eval(*args, cwd=tmp_path)
        assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
        failed = json.loads((tmp_path / "out/instances/shipyard-mini__units-1/result.json").read_text())
        assert failed["status"] == "error" and failed["job_status"] == "failed" and "overloaded" in failed["error"]

        second = shipyard_eval(*args, cwd=tmp_path)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        resumed = json.loads((tmp_path / "out/instances/shipyard-mini__units-1/result.json").read_text())
        assert resumed["status"] == "resolved" and resumed["job_id"] == failed["job_id"]
        assert [r.role for r in server.requests].count("planner") == 2  # the failed call and its retry, no more


@pytest.mark.bubblewrap
def test_an_output_dir_is_not_reused_for_other_models(tmp_path: Path, bubblewrap: str) -> None:
    gold = shipyard_eval("--mini-suite", "--gold", "-i", "shipyard-mini__units-1", "--backend", bubblewrap,
                         "-o", tmp_path / "out", cwd=tmp_path)
    assert gold.returncode == 0, gold.stdout[-3000:] + gold.stderr[-3000:]
    with ScriptedModelServer(mini_suite.SCRIPT) as server:
        models = models_toml(tmp_path / "models.toml", server)
        agents = shipyard_eval("--mini-suite", "--models", models, "--backend", bubblewrap, "-o", tmp_path / "out",
                               cwd=tmp_path)
    assert agents.returncode == 2 and "holds the results of a run of the reference patches, not a run with models " \
        "default=scripted-mini-suite; use another --output" in agents.stderr
    assert server.requests == []
