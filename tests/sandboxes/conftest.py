"""Fixtures the sandbox tests share: the machine's Docker daemon and Shipyard's image on it."""

from __future__ import annotations

import docker
import pytest

from sandboxes.image_build import DEFAULT_TAG, build_image


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    """The machine's Docker daemon; the test is skipped when none answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker daemon answers: {exc}")
    return client


@pytest.fixture(scope="module")
def image(client: docker.DockerClient) -> str:
    """Shipyard's sandbox image, built if missing."""
    build_image(DEFAULT_TAG)  # returns at once when the image is up to date
    return DEFAULT_TAG
