"""How a repository's tests run: the command, the runner, and the evidence it was chosen on.

The repository is read only through `WorkspaceReader` (a sandbox or a host directory), from the
most specific evidence to the most generic: Python (pytest's configuration, tox and nox,
test files anywhere in the tree; unittest when every test file is a unittest one), then
package.json, Cargo.toml, go.mod and a Makefile `test` or `check` target last, since such
targets often wrap Docker or fetch tools, which a sandbox without network cannot do. In a
polyglot repository the first hit is the suite that matters most and that the sandbox
image can run.

Python commands start with `python3 -m`: `-m` puts the root on sys.path, so a flat layout
imports without being installed, and Debian has no bare `python`. tox and nox are never
the command: they build their environments from the network, which sandboxes do not
have; the pytest or unittest they run is run directly, and they are named in the
evidence. A src layout gets `PYTHONPATH=src` in front (kept when the configuration puts
src on pytest's `pythonpath` itself): the package then imports from the workspace, where
the agents edit it, whether or not the environment installed it, and a regular (not
editable) install cannot hide the edits. A package whose compiled extensions exist only
in its installed copy would not import that way; such a repository wants its own
`test_command`.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, ClassVar, Literal

import json5
from pydantic import BaseModel, ConfigDict, Field

from agents.repo_files import join, list_tree, read_text
from sandboxes.base import WorkspaceReader

Runner = Literal["pytest", "unittest", "npm", "cargo", "go", "make", "custom"]
# How per-test results are read back after a run (orchestrator.engine.test_results does it):
# junit-xml: pytest writes a JUnit XML file (and its `-rA` summary is the fallback);
# unittest-verbose: `-v` lines and failure headers; cargo-libtest: `test x ... ok` lines;
# exit-code: the exit code is all there is.
ReportFormat = Literal["junit-xml", "unittest-verbose", "cargo-libtest", "exit-code"]

PYTEST_DEFAULT_FILES = ("test_*.py", "*_test.py")
# Directories pytest does not recurse into by default (its `norecursedirs`), plus the
# usual homes of environments and vendored code; a directory holding pyvenv.cfg is a venv.
NOT_SEARCHED = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}", "site-packages",
                "__pypackages__")
# How many test files are opened to tell pytest suites from unittest ones.
MAX_FILES_READ = 200
# `npm init` writes this placeholder; it fails by design and tests nothing.
NPM_PLACEHOLDER = "no test specified"
MAKEFILES = ("GNUmakefile", "makefile", "Makefile")
MAKE_TARGETS = ("test", "check")
# Commands that install the project itself (not only its requirements).
INSTALLERS = {("poetry", "install"), ("pdm", "install"), ("pipenv", "install"), ("uv", "sync"), ("hatch", "env"),
              ("setup.py", "develop"), ("setup.py", "install")}
# `pip install` arguments naming the project in the current directory: ., ./, -e., .[test]
PROJECT_ITSELF = re.compile(r"^(?:-e)?\.(?:/)?(?:\[[^\]]*\])?$")
DEVCONTAINER_FILES = (".devcontainer/devcontainer.json", ".devcontainer.json")
DEVCONTAINER_COMMANDS = ("onCreateCommand", "updateContentCommand", "postCreateCommand")
PYTHON_CALL = re.compile(r"^(?:\S*/)?python[\d.]*$")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "<", "(", ")", ";;", "|&"}


class TestCommand(BaseModel):
    """How the tests run: the command agents are told and the harness runs, and why it was chosen."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    command: str = Field(description="a shell command, run from the repository's root")
    runner: Runner
    evidence: list[str] = Field(description="what the choice rests on, one finding a line, for people and prompts")
    reports: ReportFormat = Field(description="how per-test results are collected after a run")

    @property
    def per_test(self) -> bool:
        return self.reports != "exit-code"


class NoTestCommand(BaseModel):
    """No way to run tests was found; the job is unverified rather than tested."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    evidence: list[str] = Field(default_factory=list, description="what was found and why it did not count")


def discover_test_command(files: WorkspaceReader) -> TestCommand | NoTestCommand:
    tree = list_tree(files)
    notes: list[str] = []
    finders: list[Callable[[WorkspaceReader, list[str], list[str]], TestCommand | None]] = [
        _python_suite, _npm_suite, _cargo_suite, _go_suite, _make_suite,
    ]
    for finder in finders:
        found = finder(files, tree, notes)
        if found is not None:
            return found
    return NoTestCommand(
        reason="no tests found: no pytest or unittest configuration or test files (test_*.py, *_test.py), "
        "no package.json test script, Cargo.toml, go.mod or Makefile test/check target",
        evidence=notes,
    )


def describe_test_command(command: str, origin: str) -> TestCommand:
    """A command given by the user (settings, the task, a repository's config), described as discovery would.

    Per-test results are collected when the command is recognisably pytest, unittest or
    cargo test, run as the last step of an `&&` chain and not followed by a comment
    (anything else, and the harness could not add its reporting options at the right
    place): then the harness adds them.
    """
    runner, reports = _recognise(command)
    return TestCommand(command=command, runner=runner, evidence=[f"{origin}: `{command}`"], reports=reports)


# --- Python ------------------------------------------------------------------------------


class _PytestConfig(BaseModel):
    source: str
    testpaths: list[str] = Field(default_factory=list)
    pythonpath: list[str] = Field(default_factory=list)
    python_files: list[str] = Field(default_factory=list)


def _python_suite(files: WorkspaceReader, tree: list[str], notes: list[str]) -> TestCommand | None:
    tree_set = set(tree)
    config = _pytest_config(files, notes)
    tool_evidence: list[str] = []
    runner_hints = _tox_nox_hints(files, tool_evidence)
    patterns = tuple(config.python_files) if config and config.python_files else PYTEST_DEFAULT_FILES
    searched = [p for p in tree if _searched(p, tree_set)]
    test_files = [p for p in searched if p.endswith(".py") and _matches(PurePosixPath(p).name, patterns)]
    if config and config.testpaths:
        test_files = [p for p in test_files if any(_under(p, t) for t in config.testpaths)] or test_files
    conftests = [p for p in searched if PurePosixPath(p).name == "conftest.py"]
    if config is None and not test_files and not conftests and not runner_hints:
        return None

    evidence = [_describe_config(config)] if config is not None else []
    evidence += tool_evidence
    if conftests:
        evidence.append(f"conftest.py: {_sample(conftests)}")
    if test_files:
        evidence.append(f"{len(test_files)} test file{'s' if len(test_files) != 1 else ''}: {_sample(test_files)}")
    unittest_only = (config is None and not conftests and "pytest" not in runner_hints
                     and _test_style(files, test_files) == "unittest")
    if unittest_only:
        evidence.append("every test file is a unittest one (unittest.TestCase, no pytest): run with unittest")
    evidence += _environment_evidence(files)
    prefix = _src_prefix(tree, config, evidence)
    if unittest_only:
        command = f"{prefix}python3 -m unittest {_unittest_args(tree_set, test_files)}"
        return TestCommand(command=command, runner="unittest", evidence=evidence, reports="unittest-verbose")
    return TestCommand(command=f"{prefix}python3 -m pytest", runner="pytest", evidence=evidence, reports="junit-xml")


def _pytest_config(files: WorkspaceReader, notes: list[str]) -> _PytestConfig | None:
    """pytest's configuration at the root, looked for in pytest's own order (the first one wins)."""
    for name in ("pytest.ini", ".pytest.ini"):
        section = _ini_section(files, name, "pytest", notes)
        if section is not None:
            return _ini_config(f"{name} [pytest]", section)
        if read_text(files, name) is not None:
            return _PytestConfig(source=name)  # pytest.ini counts even when empty
    pyproject = read_toml(files, "pyproject.toml", notes)
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    pytest_table = tool.get("pytest")
    if isinstance(pytest_table, dict):
        options = pytest_table.get("ini_options")
        name = "pyproject.toml [tool.pytest.ini_options]"
        if not isinstance(options, dict):
            options, name = pytest_table, "pyproject.toml [tool.pytest]"
        return _PytestConfig(source=name, **{key: _toml_list(options.get(key)) for key in
                                             ("testpaths", "pythonpath", "python_files")})
    for name, section_name in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        section = _ini_section(files, name, section_name, notes)
        if section is not None:
            return _ini_config(f"{name} [{section_name}]", section)
    return None


def _ini_config(source: str, section: dict[str, str]) -> _PytestConfig:
    return _PytestConfig(source=source, **{key: section.get(key, "").split() for key in
                                           ("testpaths", "pythonpath", "python_files")})


def _describe_config(config: _PytestConfig) -> str:
    text = f"pytest configuration: {config.source}"
    if config.testpaths:
        text += f" testpaths = {config.testpaths}"
    return text


def _tox_nox_hints(files: WorkspaceReader, evidence: list[str]) -> set[str]:
    """Which runners tox.ini and noxfile.py run ("pytest", "unittest"); each is noted in the evidence."""
    hints: set[str] = set()
    tox = read_ini_sections(files, "tox.ini")
    for name, section in tox.items():
        if name == "testenv" or name.startswith("testenv:"):
            commands = section.get("commands", "")
            for runner in ("pytest", "unittest"):
                if runner in commands:
                    hints.add(runner)
                    evidence.append(f"tox.ini [{name}] commands run {runner} (`{_first_line(commands)}`); "
                                    f"{runner} runs directly, as tox builds its environments from the network")
                    break
    noxfile = read_text(files, "noxfile.py") or ""
    for runner, pattern in (("pytest", r"['\"]pytest['\"]"), ("unittest", r"['\"]unittest['\"]")):
        if re.search(pattern, noxfile):
            hints.add(runner)
            evidence.append(f"noxfile.py runs {runner}; {runner} runs directly, as nox builds its environments "
                            "from the network")
            break
    return hints


def _test_style(files: WorkspaceReader, test_files: list[str]) -> Literal["pytest", "unittest", "none"]:
    """unittest when every test file read is a unittest one; pytest when any is not."""
    if not test_files:
        return "none"
    for path in test_files[:MAX_FILES_READ]:
        text = read_text(files, path) or ""
        is_unittest = re.search(r"^\s*(import unittest|from unittest\b)", text, re.MULTILINE) and "TestCase" in text
        if not is_unittest or re.search(r"\bpytest\b", text) or re.search(r"^(async )?def test", text, re.MULTILINE):
            return "pytest"
    return "unittest"


def _unittest_args(tree_set: set[str], test_files: list[str]) -> str:
    """`discover` from the deepest directory holding every test file, with the package root as top."""
    dirs = [PurePosixPath(p).parent.parts for p in test_files]
    common: list[str] = []
    for parts in zip(*dirs, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    start = "/".join(common) or "."
    top = start
    while top != "." and join(top, "__init__.py") in tree_set:
        top = str(PurePosixPath(top).parent)
    args = "discover" if start == "." else f"discover -s {shlex.quote(start)}"
    if top != start:
        args += f" -t {shlex.quote(top)}"
    if not any(fnmatch.fnmatch(PurePosixPath(p).name, "test*.py") for p in test_files):
        args += " -p '*_test.py'"
    return args


def _src_prefix(tree: list[str], config: _PytestConfig | None, evidence: list[str]) -> str:
    packages = sorted({p.split("/")[1] for p in tree if re.match(r"src/[^/]+/__init__\.py$", p)})
    modules = sorted(p.split("/")[1] for p in tree if re.match(r"src/[^/]+\.py$", p) and p != "src/__init__.py")
    if "src/__init__.py" in tree or not (packages or modules):
        return ""
    found = ", ".join(f"src/{name}/" for name in packages) or ", ".join(f"src/{name}" for name in modules)
    if config is not None and any(p.rstrip("/") in ("src", "./src") for p in config.pythonpath):
        evidence.append(f"src layout ({found}): {config.source} puts src on pytest's pythonpath")
        return ""
    evidence.append(f"src layout ({found}): PYTHONPATH=src, so the tests import the workspace's source whether "
                    "or not the environment installed the project (an installed copy would hide the agents' edits)")
    return "PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} "


def _environment_evidence(files: WorkspaceReader) -> list[str]:
    """What the tests need from their environment: the project installed, its dependencies."""
    evidence: list[str] = []
    for path in DEVCONTAINER_FILES:
        commands = devcontainer_commands(files, path)
        installing = [f"{key}: `{value}`" for key, value in commands if _installs_project(value)]
        if installing:
            evidence.append(f"the dev container installs the project ({path} {'; '.join(installing)})")
        elif commands:
            evidence.append(f"the dev container ({path}) runs {commands[0][0]} but does not install the project: "
                            "the tests run against the source")
    project = read_toml(files, "pyproject.toml", []).get("project")
    dependencies = project.get("dependencies") if isinstance(project, dict) else None
    if isinstance(dependencies, list) and dependencies:
        names = [re.split(r"[\s<>=!~;\[(]", str(d), maxsplit=1)[0] for d in dependencies]
        evidence.append(f"pyproject.toml [project] dependencies ({_sample(names)}) must be installed in the "
                        "environment for the tests to import")
    for name in ("requirements.txt", "requirements-dev.txt", "requirements/test.txt", "test-requirements.txt"):
        text = read_text(files, name)
        if text is not None:
            count = sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
            evidence.append(f"{name}: {count} requirement{'s' if count != 1 else ''} the environment must provide")
    return evidence


def devcontainer_commands(files: WorkspaceReader, path: str) -> list[tuple[str, str]]:
    """The dev container's lifecycle commands in the order they run, as (key, shell command)."""
    text = read_text(files, path)
    if text is None:
        return []
    try:
        config = json5.loads(text)  # devcontainer.json allows comments and trailing commas
    except ValueError:
        return []
    if not isinstance(config, dict):
        return []
    found: list[tuple[str, str]] = []
    for key in DEVCONTAINER_COMMANDS:
        value = config.get(key)
        # A command is a string, an argv list, or an object of named parallel commands.
        parts = value.values() if isinstance(value, dict) else [value]
        for part in parts:
            if isinstance(part, list):
                part = " ".join(str(arg) for arg in part)
            if isinstance(part, str) and part.strip():
                found.append((key, part.strip()))
    return found


def _installs_project(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    names = [PurePosixPath(w).name for w in words]
    if any(pair in INSTALLERS for pair in zip(names, names[1:], strict=False)):
        return True
    for i, name in enumerate(names[:-1]):
        if name in ("pip", "pip3") and names[i + 1] == "install":
            rest = words[i + 2:]
            end = next((j for j, w in enumerate(rest) if w in SHELL_OPERATORS), len(rest))
            if any(PROJECT_ITSELF.match(w) for w in rest[:end]):
                return True
    return False


# --- other ecosystems --------------------------------------------------------------------


def _npm_suite(files: WorkspaceReader, tree: list[str], notes: list[str]) -> TestCommand | None:
    text = read_text(files, "package.json")
    if text is None:
        return None
    try:
        package = json.loads(text)
    except json.JSONDecodeError:
        notes.append("package.json is not valid JSON")
        return None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or not script.strip():
        notes.append("package.json has no test script")
        return None
    if NPM_PLACEHOLDER in script:
        notes.append("package.json's test script is npm init's placeholder, which tests nothing")
        return None
    return TestCommand(command="npm test", runner="npm", evidence=[f"package.json scripts.test = `{script}`"],
                       reports="exit-code")


def _cargo_suite(files: WorkspaceReader, tree: list[str], notes: list[str]) -> TestCommand | None:
    if "Cargo.toml" not in tree:
        return None
    # Without --no-fail-fast the first failing test binary stops the run, and the tests of the
    # others would look removed.
    return TestCommand(command="cargo test --no-fail-fast", runner="cargo", reports="cargo-libtest",
                       evidence=["Cargo.toml at the root; --no-fail-fast, so every test binary runs"])


def _go_suite(files: WorkspaceReader, tree: list[str], notes: list[str]) -> TestCommand | None:
    if "go.mod" not in tree:
        return None
    tests = [p for p in tree if p.endswith("_test.go")]
    evidence = ["go.mod at the root"] + ([f"{len(tests)} test files: {_sample(tests)}"] if tests else [])
    return TestCommand(command="go test ./...", runner="go", evidence=evidence, reports="exit-code")


def _make_suite(files: WorkspaceReader, tree: list[str], notes: list[str]) -> TestCommand | None:
    for name in MAKEFILES:
        text = read_text(files, name)
        if text is None:
            continue
        for target in MAKE_TARGETS:
            match = re.search(rf"^{target}\s*:(?!=)[^\n]*(?:\n|$)((?:\t[^\n]*(?:\n|$))*)", text, re.MULTILINE)
            if match:
                recipe = _first_line(match.group(1).strip()) or "(no recipe of its own)"
                return TestCommand(command=f"make {target}", runner="make",
                                   evidence=[f"{name} target `{target}`: {recipe}"], reports="exit-code")
        notes.append(f"{name} has no test or check target")
        return None
    return None


# --- commands given by the user --------------------------------------------------------


def _recognise(command: str) -> tuple[Runner, ReportFormat]:
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        tokens = list(lexer)
    except ValueError:
        return "custom", "exit-code"
    if any(token.startswith("#") for token in tokens):
        return "custom", "exit-code"  # options appended after a comment would be commented out
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            segments.append([])
        elif token in SHELL_OPERATORS:
            return "custom", "exit-code"
        else:
            segments[-1].append(token)
    words = [w for w in segments[-1] if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
    if words and PYTHON_CALL.match(words[0]) and len(words) > 2 and words[1] == "-m":
        words = words[2:]
    if not words:
        return "custom", "exit-code"
    program = PurePosixPath(words[0]).name
    if program in ("pytest", "py.test"):
        return "pytest", "junit-xml"
    if program == "unittest":
        return "unittest", "unittest-verbose"
    if program == "cargo" and words[1:2] == ["test"]:
        return "cargo", "cargo-libtest"
    known: dict[str, Runner] = {"npm": "npm", "go": "go", "make": "make", "cargo": "cargo"}
    return known.get(program, "custom"), "exit-code"


# --- reading -----------------------------------------------------------------------------


def read_toml(files: WorkspaceReader, path: str, notes: list[str]) -> dict[str, Any]:
    """The TOML file as data, {} when missing; a broken one is {} and a line in `notes`."""
    text = read_text(files, path)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        notes.append(f"{path} is not valid TOML ({exc})")
        return {}


def _toml_list(value: object) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value] if isinstance(value, list) else []


def read_ini_sections(files: WorkspaceReader, path: str, notes: list[str] | None = None) -> dict[str, dict[str, str]]:
    """The INI file's sections (setup.cfg, tox.ini), {} when missing or broken (a line in `notes`)."""
    text = read_text(files, path)
    if text is None:
        return {}
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        if notes is not None:
            notes.append(f"{path} could not be read ({_first_line(str(exc))})")
        return {}
    return {name: dict(parser[name]) for name in parser.sections()}


def _ini_section(files: WorkspaceReader, path: str, section: str, notes: list[str]) -> dict[str, str] | None:
    return read_ini_sections(files, path, notes).get(section)


def _searched(path: str, tree_set: set[str]) -> bool:
    """Whether pytest's default recursion would reach the file."""
    parts = PurePosixPath(path).parts[:-1]
    for depth, part in enumerate(parts):
        if any(fnmatch.fnmatch(part, pattern) for pattern in NOT_SEARCHED):
            return False
        if join("/".join(parts[: depth + 1]), "pyvenv.cfg") in tree_set:
            return False
    return True


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def _under(path: str, directory: str) -> bool:
    directory = directory.strip("/").removeprefix("./")
    return directory in ("", ".") or path == directory or path.startswith(f"{directory}/")


def _sample(items: list[str], most: int = 3) -> str:
    shown = ", ".join(items[:most])
    return f"{shown} and {len(items) - most} more" if len(items) > most else shown


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
