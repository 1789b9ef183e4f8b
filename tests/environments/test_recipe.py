"""Which environment a repository gets, from its files (no sandbox), and its events as the log keeps them."""

from __future__ import annotations

from pathlib import Path

from helpers import make_repo

from agents.repo_files import HostRepoFiles
from orchestrator.environments.prepare import failure_line
from orchestrator.environments.recipe import Recipe, SetupStep, recipe_for
from orchestrator.store.events import EnvironmentReady, EnvironmentSetup, from_row, to_row
from orchestrator.store.job_view import JobView
from sandboxes.base import ExecResult

IMAGE = "shipyard-sandbox:latest"
PIP = "/shipyard-env/venv/bin/python -m pip install"
VENV = "python3 -m venv --system-site-packages /shipyard-env/venv"


def recipe(tmp_path: Path, files: dict[str, str], docker: bool = True, dockerfile: str | None = None,
           setup_command: str | None = None) -> Recipe:
    repo = make_repo(tmp_path / "repo", files)
    return recipe_for(HostRepoFiles(repo), IMAGE, dockerfile, setup_command, docker)


def commands(found: Recipe) -> list[str]:
    return [step.command for step in found.steps]


def test_a_devcontainer_image_and_its_commands_in_every_form(tmp_path: Path) -> None:
    found = recipe(tmp_path, {".devcontainer/devcontainer.json": """{
        // comments and trailing commas, as the spec allows
        "image": "python:3.12",
        "containerEnv": {"APP_MODE": "test", "TOKEN": "${localEnv:TOKEN}"},
        "onCreateCommand": "make deps",
        "updateContentCommand": ["pip", "install", "-r", "requirements.txt"],
        "postCreateCommand": {"db": "./init-db.sh", "hooks": "pre-commit install"},
    }""", "setup.py": "", "Makefile": "deps:\n\ttrue\n"}, setup_command="ignored")
    assert (found.source, found.image, found.dockerfile) == ("devcontainer", "python:3.12", None)
    assert [(s.origin, s.command) for s in found.steps] == [
        ("onCreateCommand", "make deps"), ("updateContentCommand", "pip install -r requirements.txt"),
        ("postCreateCommand", "./init-db.sh"), ("postCreateCommand", "pre-commit install")]
    assert found.env == {"APP_MODE": "test"}  # the host's variables never reach a sandbox
    assert found.files == [".devcontainer/devcontainer.json"]


def test_a_devcontainer_build_is_relative_to_its_file(tmp_path: Path) -> None:
    found = recipe(tmp_path, {".devcontainer/devcontainer.json": '{"build": {"dockerfile": "Dockerfile", '
                              '"context": ".."}}', ".devcontainer/Dockerfile": "FROM x\n"})
    assert (found.dockerfile, found.context) == (".devcontainer/Dockerfile", ".")
    assert found.files == [".devcontainer/devcontainer.json", ".devcontainer/Dockerfile"]


def test_without_docker_a_devcontainer_gives_way_to_detection(tmp_path: Path) -> None:
    found = recipe(tmp_path, {".devcontainer/devcontainer.json": '{"image": "python:3.12"}',
                              "requirements.txt": "requests\n"}, docker=False)
    assert found.source == "detected" and found.image == IMAGE
    assert commands(found) == [VENV, f"{PIP} -r requirements.txt"]
    assert found.evidence[0] == ".devcontainer/devcontainer.json is not used: dev containers need the docker backend"


def test_a_dockerfile_named_in_the_settings_then_setup_command(tmp_path: Path) -> None:
    files = {"ci/Dockerfile": "FROM x\n", "pyproject.toml": '[project]\nname = "a"\ndependencies = ["b"]\n'}
    found = recipe(tmp_path, files, dockerfile="ci", setup_command="make deps")
    assert (found.source, found.dockerfile, found.context, commands(found)) == (
        "dockerfile", "ci/Dockerfile", "ci", ["make deps"])
    explicit = recipe(tmp_path / "other", files, setup_command="make deps")
    assert (explicit.source, explicit.image, commands(explicit)) == ("setup_command", IMAGE, ["make deps"])


def test_python_detection(tmp_path: Path) -> None:
    found = recipe(tmp_path / "a", {
        "pyproject.toml": '[project]\nname = "a"\ndependencies = ["attrs"]\n[project.optional-dependencies]\n'
                          'docs = ["sphinx"]\ntests = ["pytest"]\ndev = ["ruff"]\n',
        "requirements-dev.txt": "mypy\n"})
    assert commands(found) == [VENV, f"{PIP} -e '.[tests,dev]'", f"{PIP} -r requirements-dev.txt"]
    assert found.path == ["/shipyard-env/venv/bin"] and found.env == {"VIRTUAL_ENV": "/shipyard-env/venv"}
    assert found.files == ["pyproject.toml", "requirements-dev.txt"]
    cfg = recipe(tmp_path / "b", {"setup.cfg": "[metadata]\nname = b\n[options]\ninstall_requires =\n  attrs\n"
                                  "[options.extras_require]\ntesting = pytest\n", "b/__init__.py": ""})
    assert commands(cfg) == [VENV, f"{PIP} -e '.[testing]'"]
    src = recipe(tmp_path / "c", {"pyproject.toml": '[project]\nname = "c"\n', "src/c/__init__.py": ""})
    assert commands(src) == [VENV, f"{PIP} -e ."] and "a src layout" in src.evidence[0]
    flat = recipe(tmp_path / "d", {"pyproject.toml": '[project]\nname = "d"\n', "d.py": ""})
    assert flat.source == "none" and flat.steps == []


def test_other_ecosystems(tmp_path: Path) -> None:
    found = recipe(tmp_path, {
        "package.json": '{"devDependencies": {"jest": "^29"}}', "package-lock.json": "{}",
        "go.mod": "module x\n\nrequire golang.org/x/text v0.3.0\n",
        "Cargo.toml": '[package]\nname = "x"\n[dependencies]\nserde = "1"\n'})
    assert [s.origin for s in found.steps] == ["node", "go", "rust"]
    assert commands(found)[0] == ("mkdir -p /shipyard-env/node && cp package.json package-lock.json "
                                  "/shipyard-env/node/ && cd /shipyard-env/node && npm ci")
    assert found.env["NODE_PATH"] == "/shipyard-env/node/node_modules" and found.env["GOPROXY"] == "off"
    assert found.path == ["/shipyard-env/node/node_modules/.bin"]
    bare = recipe(tmp_path / "bare", {"package.json": '{"scripts": {"test": "node --test"}}'})
    assert bare.source == "none"


def test_a_failure_is_one_line_with_the_end_of_the_output(tmp_path: Path) -> None:
    output = "Collecting tinydep\n\n  ERROR: Could not find a version that satisfies tinydep\n" + "x " * 400
    line = failure_line(SetupStep(origin="python", command="pip install -e ."),
                        ExecResult(exit_code=1, stdout=output, stderr="", duration=1.0))
    assert "\n" not in line and len(line) < 420
    assert line.startswith("environment setup failed: `pip install -e .` (python) exited 1: ...")
    timed_out = failure_line(SetupStep(origin="setup_command", command="make"),
                             ExecResult(exit_code=124, stdout="", stderr="", duration=9, timed_out=True))
    assert timed_out == "environment setup failed: `make` (setup_command) timed out"


def test_the_events_keep_and_fold(tmp_path: Path) -> None:
    setup = EnvironmentSetup(job_id="j", origin="python", command="pip install -e .", exit_code=0, output="ok",
                             seconds=2.5)
    ready = EnvironmentReady(job_id="j", key="k" * 64, source="detected", backend="docker", reused=False,
                             image="shipyard-env:kkkk", evidence=["python: ..."], seconds=3.0)
    stored = [from_row({**to_row(event), "id": i}) for i, event in enumerate((setup, ready), 1)]
    assert [type(e) for e in stored] == [EnvironmentSetup, EnvironmentReady]
    assert stored[1].payload == ready.payload
    view = JobView.of("j", stored)
    assert view.environment == stored[1] and list(view.setup_runs) == [stored[0]]
