"""Jobs on repositories that need an environment: set up once with the recipe's commands, frozen,
every sandbox (baseline, agents, verification) started from it, and found again by the next job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from envkit import (
    BACKENDS,
    OFFLINE_PIP,
    dependency_repo,
    devcontainer_repo,
    kinds,
    one_change_script,
    run_job,
    src_layout_repo,
)
from helpers import ScriptedJobs, git

from orchestrator.config.settings import EnvironmentSettings
from orchestrator.engine.runner import open_repo
from orchestrator.environments.cache import EnvironmentCache
from orchestrator.environments.manage import describe
from orchestrator.store.jobs import JobStatus
from sandboxes.docker_backend import DockerBackend
from sandboxes.image_build import DEFAULT_TAG

OFFLINE = EnvironmentSettings(env=OFFLINE_PIP, network=False)


@pytest.fixture(params=BACKENDS)
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScriptedJobs]:
    if request.param == "docker":
        found = DockerBackend().availability(DEFAULT_TAG)
        if not found.ok:
            pytest.skip(found.detail)
    scripted = ScriptedJobs(tmp_path, request.param)
    yield scripted
    scripted.close()
    if request.param == "docker":
        for env in EnvironmentCache(tmp_path / "state").all():
            if env.image:
                DockerBackend().remove_image(env.image)


def test_a_third_party_dependency_is_installed_once_and_reused(tmp_path: Path, jobs: ScriptedJobs) -> None:
    repo = dependency_repo(tmp_path / "report")
    script = one_change_script("report/__init__.py", "text.strip()", "text.strip(' ')")
    director, job = run_job(jobs, repo, script, environment=OFFLINE)
    assert job.status == JobStatus.SUCCEEDED, job.error

    setups = kinds(director, job, "env.setup")
    assert [e.command for e in setups] == [
        "python3 -m venv --system-site-packages /shipyard-env/venv",
        "/shipyard-env/venv/bin/python -m pip install -e '.[test]'",
    ]
    assert all(e.exit_code == 0 for e in setups)
    assert "Successfully installed" in setups[1].output and "tinydep-1.0" in setups[1].output
    (ready,) = kinds(director, job, "env.ready")
    assert (ready.source, ready.backend, ready.reused) == ("detected", jobs.backend, False)
    assert any("dependencies" in line for line in ready.evidence)

    # Set up before anything else; the baseline and the job branch ran their tests in it (they import tinydep).
    order = [e.kind for e in director.events(job.id)]
    assert order.index("env.ready") < order.index("job.prepared") < order.index("plan.ready")
    report = director.report(job.id)
    assert report is not None
    assert "python3 -m pytest" in (report.tests_before.command or "")
    assert report.tests_before.passed is True and report.tests_after.passed is True
    assert "1 passed" in report.tests_after.output
    assert (report.environment or "").startswith(f"detected on {jobs.backend}, set up in ")
    view = director.view(job.id)
    assert view.environment is not None and view.environment.key == ready.key and len(view.setup_runs) == 2

    # A second job on the same repository starts from the cached environment: nothing is set up again.
    second_director, second = run_job(jobs, repo, script, environment=OFFLINE)
    assert second.status == JobStatus.SUCCEEDED, second.error
    assert kinds(second_director, second, "env.setup") == []
    (again,) = kinds(second_director, second, "env.ready")
    assert (again.key, again.reused) == (ready.key, True)
    second_report = second_director.report(second.id)
    assert second_report is not None and (second_report.environment or "").startswith(f"detected on {jobs.backend}, "
                                                                                        "reused")
    assert [env.key for env in EnvironmentCache(tmp_path / "state").all()] == [ready.key]


def test_a_src_layout_imports_from_the_installed_project(tmp_path: Path, jobs: ScriptedJobs) -> None:
    repo = src_layout_repo(tmp_path / "calc")
    script = one_change_script("src/calc/__init__.py", "return a + b", "return b + a")
    director, job = run_job(jobs, repo, script, environment=OFFLINE)
    assert job.status == JobStatus.SUCCEEDED, job.error
    install = kinds(director, job, "env.setup")[1]
    assert install.command == "/shipyard-env/venv/bin/python -m pip install -e ."
    (ready,) = kinds(director, job, "env.ready")
    assert any("a src layout" in line for line in ready.evidence)
    report = director.report(job.id)
    assert report is not None
    # `python3 -m pytest` with nothing on its path: the editable install points at each sandbox's own /workspace/src.
    assert "python3 -m pytest" in (report.tests_before.command or "")
    assert report.tests_before.passed is True and report.tests_after.passed is True
    assert git(repo, "show", f"shipyard/{job.id}:src/calc/__init__.py") == "def add(a, b):\n    return b + a\n"


def test_a_failed_setup_stops_the_job_before_any_agent(tmp_path: Path, jobs: ScriptedJobs) -> None:
    repo = dependency_repo(tmp_path / "report")
    (repo / "wheels" / "tinydep-1.0-py3-none-any.whl").unlink()
    git(repo, "commit", "-qam", "lose the wheel")
    director, job = run_job(jobs, repo, one_change_script("report/__init__.py", "a", "b"), environment=OFFLINE)
    assert job.status == JobStatus.FAILED
    error = job.error or ""
    assert "\n" not in error
    assert error.startswith("environment setup failed: `/shipyard-env/venv/bin/python -m pip install -e '.[test]'` "
                            "(python) exited 1: ")
    assert "tinydep" in error  # the end of pip's output says what it could not find
    failed = kinds(director, job, "env.setup")[-1]
    assert failed.exit_code == 1
    assert not [e for e in director.events(job.id) if e.kind.startswith(("agent.", "plan.", "job.prepared"))]
    assert jobs.server is not None and jobs.server.requests == []
    assert EnvironmentCache(tmp_path / "state").all() == []


@pytest.mark.docker
def test_a_dev_container_is_built_set_up_and_committed(tmp_path: Path) -> None:
    found = DockerBackend().availability(DEFAULT_TAG)
    if not found.ok:
        pytest.skip(found.detail)
    repo = devcontainer_repo(tmp_path / "greet", base=DEFAULT_TAG)
    scripted = ScriptedJobs(tmp_path, "docker")
    try:
        script = one_change_script("greet/__init__.py", "def hello(name):\n",
                                   "def hello(name):\n    \"\"\"The greeting of the environment.\"\"\"\n")
        director, job = run_job(scripted, repo, script, environment=EnvironmentSettings(network=False))
        assert job.status == JobStatus.SUCCEEDED, job.error
        setups = kinds(director, job, "env.setup")
        assert [(e.origin, e.command) for e in setups] == [
            ("onCreateCommand", "echo created > /etc/greet-created"),
            ("postCreateCommand", "pip install --no-deps -e ."),
        ]
        (ready,) = kinds(director, job, "env.ready")
        assert ready.source == "devcontainer" and ready.image == f"shipyard-env:{ready.key[:16]}"
        image = docker.from_env().images.get(ready.image)
        assert image.labels["shipyard.env"] == ready.key
        report = director.report(job.id)
        assert report is not None
        # Both tests pass only in the committed image: containerEnv reaches the tests, /etc holds the marker.
        assert "python3 -m pytest" in (report.tests_before.command or "")
        assert report.tests_before.passed is True and "2 passed" in report.tests_after.output
        assert (report.environment or "").startswith("devcontainer on docker, set up in ")

        again_director, again = run_job(scripted, repo, script, environment=EnvironmentSettings(network=False))
        assert again.status == JobStatus.SUCCEEDED, again.error
        assert kinds(again_director, again, "env.setup") == []
    finally:
        scripted.close()
        for env in EnvironmentCache(tmp_path / "state").all():
            DockerBackend().remove_image(env.image or "")
            DockerBackend().remove_image(f"shipyard-env-base:{env.key[:16]}")


@pytest.mark.docker
def test_a_failed_dev_container_setup_leaves_no_image(tmp_path: Path) -> None:
    found = DockerBackend().availability(DEFAULT_TAG)
    if not found.ok:
        pytest.skip(found.detail)
    repo = devcontainer_repo(tmp_path / "greet", base=DEFAULT_TAG)
    config = repo / ".devcontainer/devcontainer.json"
    config.write_text(config.read_text().replace('"echo created > /etc/greet-created"', '"echo no; exit 3"'))
    git(repo, "commit", "-qam", "a setup that fails")
    scripted = ScriptedJobs(tmp_path, "docker")
    try:
        director, job = run_job(scripted, repo, one_change_script("greet/__init__.py", "a", "b"),
                                environment=EnvironmentSettings(network=False))
    finally:
        scripted.close()
    assert job.status == JobStatus.FAILED
    assert job.error == "environment setup failed: `echo no; exit 3` (onCreateCommand) exited 3: no"
    key = describe(director.settings, open_repo(director.settings, str(repo)), "main").key
    assert key is not None
    assert docker.from_env().images.list(filters={"label": f"shipyard.env={key}"}) == []
