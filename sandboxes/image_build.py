"""Building sandbox images: Shipyard's own, or a repository's own Dockerfile.

Shipyard's image is described once, in sandboxes/image/ (Dockerfile, packages.txt,
setup.sh). Where the Docker daemon can pull the Debian base image, the Dockerfile is
built as usual. Where it cannot (air-gapped machines, registries blocked, only a
Debian mirror reachable), the same packages are bootstrapped with mmdebstrap and the
root file system is imported with the Dockerfile's metadata, giving an equivalent
image without any registry.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.utils import parse_repository_tag
from requests import RequestException

from sandboxes.base import SandboxError

DEFAULT_TAG = "shipyard-sandbox:latest"
IMAGE_DIR = Path(__file__).parent / "image"
DEBIAN_SUITE = "bookworm"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# Records which inputs an image was built from, so an unchanged image is not rebuilt.
INPUTS_LABEL = "shipyard.image.inputs"
# Dockerfile instructions that `docker import --change` accepts and that matter at run time.
IMPORTED_INSTRUCTIONS = ("ENV", "USER", "WORKDIR", "CMD", "LABEL", "ENTRYPOINT")

Method = Literal["auto", "dockerfile", "mmdebstrap"]
Log = Callable[[str], None]


class ImageBuildError(SandboxError):
    """The image could not be built; the message says why and what to try."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_image(
    tag: str = DEFAULT_TAG,
    method: Method = "auto",
    dockerfile_dir: Path | None = None,
    log: Log = _stderr,
    force: bool = False,
) -> str:
    """Build `tag` and return its image id.

    Without `dockerfile_dir`, builds Shipyard's sandbox image, skipping the work when
    an image with that tag was already built from the same inputs (unless `force`).
    With `dockerfile_dir`, builds that directory's Dockerfile (a repository's own
    image); Docker's layer cache makes repeating it cheap.
    """
    client = _client()
    if dockerfile_dir is not None:
        return _build_dockerfile(client, Path(dockerfile_dir), tag, {}, log)

    inputs = _inputs_digest()
    if not force and (existing := _image_if_current(client, tag, inputs)):
        log(f"{tag} is up to date ({existing[:19]})")
        return existing
    if method == "auto":
        method = "dockerfile" if _can_get_base_image(client, log) else "mmdebstrap"
    log(f"building {tag} with {method}")
    if method == "dockerfile":
        return _build_dockerfile(client, IMAGE_DIR, tag, {INPUTS_LABEL: inputs}, log)
    return _build_mmdebstrap(client, tag, inputs, log)


def package_list() -> list[str]:
    """The packages of the sandbox image, from packages.txt."""
    text = (IMAGE_DIR / "packages.txt").read_text()
    return [word for line in text.splitlines() for word in line.split("#", 1)[0].split()]


def base_image() -> str:
    """The image the Dockerfile starts FROM."""
    for line in (IMAGE_DIR / "Dockerfile").read_text().splitlines():
        if line.upper().startswith("FROM "):
            return line.split()[1]
    raise ImageBuildError(f"{IMAGE_DIR / 'Dockerfile'} has no FROM line")


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except (DockerException, RequestException) as exc:
        raise ImageBuildError(f"the Docker daemon does not answer ({exc}); start the Docker daemon") from exc
    return client


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in ("Dockerfile", "packages.txt", "setup.sh"):
        digest.update(name.encode() + b"\0" + (IMAGE_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _image_if_current(client: docker.DockerClient, tag: str, inputs: str) -> str | None:
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    return image.id if image.labels.get(INPUTS_LABEL) == inputs else None


def _can_get_base_image(client: docker.DockerClient, log: Log) -> bool:
    """Whether the Dockerfile's base image is local or its registry answers.

    Asking the registry for the manifest downloads nothing and fails within
    seconds when registries are unreachable.
    """
    base = base_image()
    try:
        client.images.get(base)
        return True
    except ImageNotFound:
        pass
    try:
        docker.from_env(timeout=15).api.inspect_distribution(base)
        return True
    except (DockerException, OSError) as exc:
        reason = exc.explanation if isinstance(exc, APIError) else exc
        log(f"cannot pull {base}: {reason}")
        return False


def build_from(context: Path, dockerfile: Path, tag: str, labels: dict[str, str], log: Log = _stderr) -> str:
    """Build `dockerfile` (any name, inside `context`) as `tag` with `labels`, pulling nothing; its image id."""
    return _build_dockerfile(_client(), context, tag, labels, log, dockerfile)


def _build_dockerfile(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    labels: dict[str, str],
    log: Log,
    dockerfile: Path | None = None,
) -> str:
    dockerfile = dockerfile or context / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageBuildError(f"{context} has no {dockerfile.name}")
    try:
        relative = str(dockerfile.resolve().relative_to(context.resolve()))
    except ValueError:
        raise ImageBuildError(f"{dockerfile} is outside its build context {context}") from None
    log(f"docker build {context} -f {relative} -t {tag}")
    image_id = None
    try:
        for chunk in client.api.build(path=str(context), dockerfile=relative, tag=tag, rm=True, decode=True,
                                      labels=labels):
            if "error" in chunk:
                raise ImageBuildError(f"docker build of {context} failed: {chunk['error'].strip()}")
            if text := chunk.get("stream", "").rstrip():
                log(text)
            if aux := chunk.get("aux"):
                image_id = aux.get("ID", image_id)
    except APIError as exc:
        raise ImageBuildError(f"docker build of {context} failed: {exc.explanation or exc}") from exc
    return image_id or client.images.get(tag).id


def _build_mmdebstrap(client: docker.DockerClient, tag: str, inputs: str, log: Log) -> str:
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            f"cannot pull {base_image()} and mmdebstrap is not installed: "
            "install mmdebstrap (apt-get install mmdebstrap) or give the Docker daemon registry access"
        )
    with tempfile.TemporaryDirectory(prefix="shipyard-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _run_logged(_mmdebstrap_command(rootfs), log)
        log(f"importing {rootfs.stat().st_size >> 20} MiB as {tag}")
        repository, version = parse_repository_tag(tag)
        changes = [*_dockerfile_metadata(), f"LABEL {INPUTS_LABEL}={inputs}"]
        try:
            client.api.import_image(src=str(rootfs), repository=repository, tag=version, changes=changes)
        except APIError as exc:
            raise ImageBuildError(f"docker import failed: {exc.explanation or exc}") from exc
    image_id = client.images.get(tag).id
    log(f"built {tag} ({image_id[:19]})")
    return image_id


def _mmdebstrap_command(rootfs: Path) -> list[str]:
    # The same sources as the host when it has a deb822 Debian list (a mirror the
    # machine is known to reach), the Debian default otherwise.
    mirror = [str(DEBIAN_SOURCES)] if DEBIAN_SOURCES.is_file() else []
    setup = shlex.quote(str(IMAGE_DIR / "setup.sh"))
    return [
        "mmdebstrap",
        "--variant=minbase",
        # As the Dockerfile's --no-install-recommends: the same package set both ways.
        '--aptopt=APT::Install-Recommends "false"',
        # As bookworm-slim: no manuals or translations in an image nobody reads them in.
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        f"--include={','.join(package_list())}",
        f'--customize-hook=chroot "$1" sh -s < {setup}',
        DEBIAN_SUITE,
        str(rootfs),
        *mirror,
    ]


def _dockerfile_metadata() -> list[str]:
    """The Dockerfile's run-time instructions, as `docker import --change` takes them."""
    lines = (IMAGE_DIR / "Dockerfile").read_text().splitlines()
    return [line.strip() for line in lines if line.split(" ", 1)[0].upper() in IMPORTED_INSTRUCTIONS]


def _run_logged(command: list[str], log: Log) -> None:
    log("$ " + shlex.join(command))
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log(line.rstrip())
    if proc.returncode != 0:
        raise ImageBuildError(f"{command[0]} failed with exit code {proc.returncode}; see the log above")
