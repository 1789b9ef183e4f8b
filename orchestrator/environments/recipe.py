"""Which project environment a repository needs, read from its files: the recipe.

Sources, first found wins: the repo's dev container (`.devcontainer/devcontainer.json`: its image
or Dockerfile and its lifecycle commands), a Dockerfile named in shipyard.toml (`sandbox.dockerfile`,
with `setup_command` run in it if set), an explicit `setup_command`, else detection:

- Python: a venv at ENV_DIR/venv that sees the image's own packages (`--system-site-packages`, so
  an image's pytest counts and nothing it has is downloaded again), the project installed in it
  editable with its test extras, and its requirements files. Editable, because every sandbox
  mounts its own checkout at /workspace, where the install points: the tests import the agent's
  code, src layouts included. A flat, stdlib-only project needs nothing and gets nothing;
- Node: `npm ci` (or `npm install` without a lock file) of package.json in ENV_DIR/node, found
  through NODE_PATH and PATH (node_modules in the workspace would be each checkout's own);
- Go: `go mod download` into ENV_DIR/go; Rust: `cargo fetch` into ENV_DIR/cargo.

Everything a setup writes outside the workspace is kept (docker: the committed container;
bubblewrap: ENV_DIR, a host directory). The workspace itself is each agent's own checkout.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from typing import Literal

import json5
from pydantic import BaseModel, ConfigDict, Field

from agents.repo_files import list_tree, read_text
from agents.test_discovery import DEVCONTAINER_FILES, devcontainer_commands, read_ini_sections, read_toml
from sandboxes.base import WorkspaceReader

# Where a prepared environment keeps what it set up, in every sandbox (outside the workspace).
ENV_DIR = "/shipyard-env"
VENV = f"{ENV_DIR}/venv"
Source = Literal["devcontainer", "dockerfile", "setup_command", "detected", "none"]
TEST_EXTRAS = ("test", "tests", "testing", "dev")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "requirements-test.txt", "requirements_dev.txt",
                "test-requirements.txt", "dev-requirements.txt", "requirements/test.txt", "requirements/dev.txt")
PYTHON_FILES = ("pyproject.toml", "setup.cfg", "setup.py")
NODE_LOCKS = ("package-lock.json", "npm-shrinkwrap.json")


class SetupStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    origin: str = Field(description="where it comes from, e.g. postCreateCommand, setup_command, python")
    command: str = Field(description="a shell command, run from the workspace's root")


class Recipe(BaseModel):
    """How to set a repository's environment up; its fields and the files it names define the cache key."""

    model_config = ConfigDict(frozen=True)

    source: Source
    image: str | None = Field(None, description="docker: the image to start from")
    dockerfile: str | None = Field(None, description="docker: a Dockerfile in the repo to build that image from")
    context: str | None = Field(None, description="the Dockerfile's build context, in the repo")
    steps: list[SetupStep] = []
    path: list[str] = Field([], description="directories put first on every sandbox's PATH")
    env: dict[str, str] = Field({}, description="variables every sandbox gets")
    files: list[str] = Field([], description="the repo files that define it")
    evidence: list[str] = Field([], description="why it is what it is, one finding a line")


def recipe_for(files: WorkspaceReader, image: str, dockerfile: str | None, setup_command: str | None,
               docker: bool) -> Recipe:
    """The recipe of the repository `files` reads. `image`: the sandbox image; `dockerfile`: sandbox.dockerfile
    (a directory in the repo); `docker`: whether images can be built and started (else the host is the image)."""
    evidence: list[str] = []
    if docker:
        found = _devcontainer(files, evidence)
        if found is not None:
            return found
        if dockerfile:
            directory = posixpath.normpath(dockerfile.strip("/")) if not dockerfile.startswith("/") else dockerfile
            steps = [SetupStep(origin="setup_command", command=setup_command)] if setup_command else []
            return Recipe(source="dockerfile", dockerfile=f"{directory}/Dockerfile", context=directory, steps=steps,
                          files=[f"{directory}/Dockerfile"],
                          evidence=[f"shipyard.toml names the Dockerfile {directory}/Dockerfile"])
    else:
        for path in DEVCONTAINER_FILES:
            if read_text(files, path) is not None:
                evidence.append(f"{path} is not used: dev containers need the docker backend")
    if setup_command:
        return Recipe(source="setup_command", image=image, steps=[SetupStep(origin="setup_command",
                      command=setup_command)], evidence=[*evidence, f"setup_command: `{setup_command}`"])
    return _detected(files, image, evidence)


# --- dev containers ---------------------------------------------------------------------------


def _devcontainer(files: WorkspaceReader, evidence: list[str]) -> Recipe | None:
    for path in DEVCONTAINER_FILES:
        text = read_text(files, path)
        if text is None:
            continue
        try:
            config = json5.loads(text)  # devcontainer.json allows comments and trailing commas
        except ValueError as exc:
            evidence.append(f"{path} is not valid JSON ({exc}); ignored")
            continue
        if not isinstance(config, dict):
            continue
        home = posixpath.dirname(path)
        build = config.get("build") if isinstance(config.get("build"), dict) else {}
        named = build.get("dockerfile") or config.get("dockerFile")
        context = build.get("context") or config.get("context") or "."
        steps = [SetupStep(origin=key, command=command) for key, command in devcontainer_commands(files, path)]
        env = {**_strings(config.get("containerEnv")), **_strings(config.get("remoteEnv"))}
        if isinstance(named, str):
            dockerfile = posixpath.normpath(posixpath.join(home, named))
            return Recipe(source="devcontainer", dockerfile=dockerfile,
                          context=posixpath.normpath(posixpath.join(home, str(context))), steps=steps, env=env,
                          files=[path, dockerfile], evidence=[f"{path}: built from {dockerfile}", *_said(steps)])
        if isinstance(config.get("image"), str):
            return Recipe(source="devcontainer", image=config["image"], steps=steps, env=env, files=[path],
                          evidence=[f"{path}: image {config['image']}", *_said(steps)])
        evidence.append(f"{path} names neither an image nor a Dockerfile (Compose is not supported); ignored")
    return None


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    # ${localEnv:...} and the like name the host's variables: never passed into a sandbox.
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float) and "${" not in str(v)}


def _said(steps: list[SetupStep]) -> list[str]:
    return [f"{step.origin}: `{step.command}`" for step in steps]


# --- detection ---------------------------------------------------------------------------------


def _detected(files: WorkspaceReader, image: str, evidence: list[str]) -> Recipe:
    tree = list_tree(files)
    steps: list[SetupStep] = []
    path: list[str] = []
    env: dict[str, str] = {}
    defining: list[str] = []
    for detect in (_python, _node, _go, _rust):
        found = detect(files, tree, evidence)
        if found is not None:
            steps += found.steps
            path += found.path
            env |= found.env
            defining += found.files
    if not steps:
        return Recipe(source="none", image=image, evidence=[*evidence, "nothing to install: no dependencies, test "
                      "extras, requirements files or src layout found"])
    return Recipe(source="detected", image=image, steps=steps, path=path, env=env, files=defining, evidence=evidence)


def _python(files: WorkspaceReader, tree: list[str], evidence: list[str]) -> Recipe | None:
    notes: list[str] = []
    pyproject = read_toml(files, "pyproject.toml", notes)
    project = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else {}
    setup_cfg = read_ini_sections(files, "setup.cfg", notes)
    has_setup_py = "setup.py" in tree
    installable = bool(project or pyproject.get("build-system") or has_setup_py or "metadata" in setup_cfg)
    dependencies = project.get("dependencies") or setup_cfg.get("options", {}).get("install_requires", "").strip()
    extras = set(project.get("optional-dependencies") or {}) | set(setup_cfg.get("options.extras_require", {}))
    wanted = [name for name in TEST_EXTRAS if name in extras]
    requirements = [name for name in REQUIREMENTS if name in tree]
    src_layout = any(re.fullmatch(r"src/[^/]+/__init__\.py", p) for p in tree)
    evidence += notes
    install_project = installable and bool(dependencies or wanted or src_layout or has_setup_py)
    if not (install_project or requirements):
        return None
    pip = f"{VENV}/bin/python -m pip install"
    steps = [SetupStep(origin="python", command=f"python3 -m venv --system-site-packages {VENV}")]
    if install_project:
        target = "." + (f"[{','.join(wanted)}]" if wanted else "")
        steps.append(SetupStep(origin="python", command=f"{pip} -e {shlex.quote(target)}"))
        why = [w for w, yes in (("dependencies", dependencies), (f"test extras {', '.join(wanted)}", wanted),
                                ("a src layout", src_layout), ("setup.py", has_setup_py)) if yes]
        evidence.append(f"python: the project installed editable in {VENV} ({'; '.join(why)})")
    for name in requirements:
        steps.append(SetupStep(origin="python", command=f"{pip} -r {shlex.quote(name)}"))
    if requirements:
        evidence.append(f"python: {', '.join(requirements)} installed in {VENV}")
    return Recipe(source="detected", steps=steps, path=[f"{VENV}/bin"], env={"VIRTUAL_ENV": VENV},
                  files=[name for name in (*PYTHON_FILES, *requirements) if name in tree])


def _node(files: WorkspaceReader, tree: list[str], evidence: list[str]) -> Recipe | None:
    text = read_text(files, "package.json")
    if text is None:
        return None
    try:
        package = json.loads(text)
    except ValueError:
        evidence.append("package.json is not valid JSON; nothing installed for Node")
        return None
    if not isinstance(package, dict) or not (package.get("dependencies") or package.get("devDependencies")):
        return None
    lock = next((name for name in NODE_LOCKS if name in tree), None)
    home = f"{ENV_DIR}/node"
    copied = " ".join(["package.json", *([lock] if lock else [])])
    install = "npm ci" if lock else "npm install"
    evidence.append(f"node: `{install}` of package.json into {home}/node_modules (NODE_PATH)")
    return Recipe(source="detected", steps=[SetupStep(origin="node", command=(
        f"mkdir -p {home} && cp {copied} {home}/ && cd {home} && {install}"))],
        path=[f"{home}/node_modules/.bin"], env={"NODE_PATH": f"{home}/node_modules"},
        files=["package.json", *([lock] if lock else [])])


def _go(files: WorkspaceReader, tree: list[str], evidence: list[str]) -> Recipe | None:
    text = read_text(files, "go.mod")
    if text is None or "require" not in text:
        return None
    cache = f"{ENV_DIR}/go/mod"
    evidence.append(f"go: `go mod download` into {cache}")
    return Recipe(source="detected", steps=[SetupStep(origin="go", command=f"GOMODCACHE={cache} go mod download")],
                  env={"GOMODCACHE": cache, "GOFLAGS": "-mod=mod", "GOPROXY": "off"},
                  files=[name for name in ("go.mod", "go.sum") if name in tree])


def _rust(files: WorkspaceReader, tree: list[str], evidence: list[str]) -> Recipe | None:
    manifest = read_toml(files, "Cargo.toml", evidence)
    if not (manifest.get("dependencies") or manifest.get("dev-dependencies")):
        return None
    home = f"{ENV_DIR}/cargo"
    evidence.append(f"rust: `cargo fetch` into {home}")
    return Recipe(source="detected", steps=[SetupStep(origin="rust", command=f"CARGO_HOME={home} cargo fetch")],
                  env={"CARGO_HOME": home, "CARGO_NET_OFFLINE": "true"},
                  files=[name for name in ("Cargo.toml", "Cargo.lock") if name in tree])
