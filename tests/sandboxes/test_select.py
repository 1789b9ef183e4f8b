"""Choosing a backend against real Docker daemons: the machine's, and one of the test's own without the image."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from adversarial.kit import private_dockerd, private_dockerd_unavailable

from sandboxes.base import SandboxError, SandboxSpec
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.image_build import DEFAULT_TAG
from sandboxes.select import choose_backend, select_backend

pytestmark = pytest.mark.docker

ABSENT = "shipyard-test-absent:1"
EXPLICIT_HINT = (
    f"the sandbox image {ABSENT} does not exist: build it (`shipyard sandbox build` builds the bundled image, with "
    f"`--dockerfile <dir>` a repo's own, under that tag; or `docker build -t {ABSENT} <dir>`) or pull it"
)


@pytest.fixture
def imageless_daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DOCKER_HOST at a dockerd of the test's own, which has no shipyard-sandbox image."""
    if why := private_dockerd_unavailable():
        pytest.skip(why)
    with private_dockerd() as daemon:
        monkeypatch.setenv("DOCKER_HOST", daemon.host)
        yield


@pytest.mark.bubblewrap
def test_auto_without_the_default_image_uses_bubblewrap_and_says_why(imageless_daemon: None) -> None:
    selection = choose_backend("auto", DEFAULT_TAG)

    assert isinstance(selection.backend, BubblewrapBackend)
    assert selection.note == (
        f"sandboxes use bubblewrap, not docker: the sandbox image {DEFAULT_TAG} does not exist: "
        "run `shipyard sandbox build`"
    )


def test_auto_never_ignores_an_explicit_image_that_is_missing(client: docker.DockerClient) -> None:
    assert not client.images.list(name=ABSENT)
    with pytest.raises(SandboxError) as refused:
        choose_backend("auto", ABSENT)

    assert str(refused.value) == f"{EXPLICIT_HINT}; or set sandbox.image back to {DEFAULT_TAG}"


def test_auto_with_the_image_present_uses_docker_without_a_note(image: str) -> None:
    selection = choose_backend("auto", DEFAULT_TAG)

    assert isinstance(selection.backend, DockerBackend) and selection.note is None
    assert isinstance(select_backend("auto", DEFAULT_TAG), DockerBackend)


def test_docker_by_name_with_the_image_missing_fails_at_once_in_one_line(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    with pytest.raises(SandboxError) as refused:
        choose_backend("docker", ABSENT)
    assert str(refused.value) == f"the docker sandbox cannot run here: {EXPLICIT_HINT}"

    outcome: list[BaseException] = []

    def start() -> None:
        try:
            DockerBackend(client).start(SandboxSpec(workspace=tmp_path, image=ABSENT)).stop()
        except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
            outcome.append(exc)

    starting = threading.Thread(target=start)
    starting.start()
    starting.join(120)
    assert not starting.is_alive(), "starting a sandbox from a missing image hung"
    assert len(outcome) == 1 and isinstance(outcome[0], SandboxError) and str(outcome[0]) == EXPLICIT_HINT
