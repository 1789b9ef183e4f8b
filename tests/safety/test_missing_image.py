"""`backend = "docker"` with the configured sandbox image missing: refused in one line before there is a job, or,
when the image goes after the job was queued, the worker fails the job in one line; no job is left
queued or running, and no container is left behind."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator

import docker
import pytest
from safekit import CHANGE, World, ended, one_error_line, wait_for

from orchestrator.store.jobs import JobStatus
from sandboxes.image_build import DEFAULT_TAG, build_image

pytestmark = pytest.mark.docker

STUCK = (JobStatus.QUEUED, JobStatus.RUNNING)


@pytest.fixture
def fleeting_image(client: docker.DockerClient) -> Iterator[str]:
    """A tag of the sandbox image of this test's own, for the test to remove; removed at the end if still there."""
    build_image(DEFAULT_TAG)  # returns at once when the image is up to date
    name = f"shipyard-test-fleeting:{uuid.uuid4().hex[:8]}"
    client.images.get(DEFAULT_TAG).tag(name)
    yield name
    try:
        client.images.remove(name)
    except docker.errors.ImageNotFound:
        pass


def _hint(image: str) -> str:
    return f"the docker sandbox cannot run here: the sandbox image {image} does not exist"


def test_run_and_submit_with_a_missing_image_are_refused_in_one_line_and_leave_no_job(
        world: Callable[..., World], client: docker.DockerClient) -> None:
    w = world(CHANGE, backend="docker")
    absent = f"shipyard-test-absent:{uuid.uuid4().hex[:8]}"
    for command in ("submit", "run"):
        refused = w.shipyard(command, "add a note", "--repo", ".", env={"SHIPYARD_SANDBOX__IMAGE": absent})
        line = one_error_line(refused.stderr)
        assert refused.returncode == 2 and line.startswith(f"error: {_hint(absent)}") and "build" in line, command
        assert refused.stdout == ""
    assert w.director().list() == []
    assert w.server.requests == []


def test_an_image_gone_before_the_worker_takes_the_job_fails_it_in_one_line(
        world: Callable[..., World], client: docker.DockerClient, fleeting_image: str) -> None:
    w = world(CHANGE, backend="docker")
    submitted = w.shipyard("submit", "add a note", "--repo", ".", env={"SHIPYARD_SANDBOX__IMAGE": fleeting_image})
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    client.images.remove(fleeting_image)
    worker = w.start("serve", cwd=w.elsewhere, env={"SHIPYARD_WORKERS__POLL": "0.2"})
    try:
        wait_for(lambda: w.director().get(job_id).status not in STUCK, 120, "the worker to end the job")
        result = w.shipyard("result", job_id, "--wait", cwd=w.elsewhere)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        code, _, err = ended(worker, 30)
    assert code == 0 and "Traceback" not in err, err
    job = w.director().get(job_id)
    assert job.status == JobStatus.FAILED and job.error is not None and "\n" not in job.error
    assert job.error.startswith(_hint(fleeting_image)), job.error
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith(f"job {job_id} failed: {_hint(fleeting_image)}"), result.stdout
    assert [j.id for j in w.director().list() if j.status in STUCK] == []
    assert w.server.requests == [], "no agent ran"
    assert client.containers.list(all=True, filters={"label": f"shipyard.job={job_id}"}) == []
