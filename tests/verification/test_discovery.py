"""Test discovery: the command, the runner and the evidence, for configured and unconfigured repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import realrepos

from agents.repo_files import HostRepoFiles
from agents.test_discovery import NoTestCommand, TestCommand, describe_test_command, discover_test_command
from sandboxes.base import SandboxSpec
from sandboxes.local import LocalBackend


def _write(root: Path, files: dict[str, str]) -> Path:
    realrepos.write(root, files)
    return root


def discover(root: Path) -> TestCommand | NoTestCommand:
    return discover_test_command(HostRepoFiles(root))


def found(root: Path) -> TestCommand:
    result = discover(root)
    assert isinstance(result, TestCommand), result
    return result


PYTEST_CONFIGS = [
    ({"pytest.ini": "[pytest]\ntestpaths = src/pkg/tests\n"}, "pytest.ini [pytest] testpaths = ['src/pkg/tests']"),
    ({"pytest.ini": ""}, "pytest.ini"),
    ({"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["src/pkg/tests"]\n'},
     "pyproject.toml [tool.pytest.ini_options] testpaths = ['src/pkg/tests']"),
    ({"tox.ini": "[tox]\nenvlist = py311\n\n[pytest]\ntestpaths =\n    checks\n    more\n"},
     "tox.ini [pytest] testpaths = ['checks', 'more']"),
    ({"setup.cfg": "[metadata]\nname = x\n\n[tool:pytest]\naddopts = -q\n"}, "setup.cfg [tool:pytest]"),
]


@pytest.mark.parametrize(("files", "evidence"), PYTEST_CONFIGS)
def test_pytest_configuration_is_evidence(tmp_path: Path, files: dict[str, str], evidence: str) -> None:
    command = found(_write(tmp_path, files))
    assert (command.command, command.runner, command.reports) == ("python3 -m pytest", "pytest", "junit-xml")
    assert command.evidence[0] == f"pytest configuration: {evidence}"


def test_pytest_ini_wins_over_pyproject_as_in_pytest(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {"pytest.ini": "[pytest]\n", "pyproject.toml": "[tool.pytest.ini_options]\n"}))
    assert command.evidence[0] == "pytest configuration: pytest.ini [pytest]"


def test_test_files_anywhere_in_the_tree(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {"pkg/__init__.py": "", "pkg/tests/test_x.py": "def test_x(): pass\n",
                                      "pkg/sub/y_test.py": "def test_y(): pass\n",
                                      "build/lib/pkg/tests/test_x.py": "", "venv/lib/test_z.py": "",
                                      ".tox/py/test_w.py": "", "env/pyvenv.cfg": "", "env/lib/test_v.py": ""}))
    assert command.command == "python3 -m pytest"
    assert command.evidence == ["2 test files: pkg/sub/y_test.py, pkg/tests/test_x.py"]


def test_testpaths_choose_the_test_files_named(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {
        "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["src/pkg/tests"]\n',
        "src/pkg/__init__.py": "", "src/pkg/tests/test_a.py": "", "scripts/test_tool.py": ""}))
    assert "1 test file: src/pkg/tests/test_a.py" in command.evidence


def test_src_layout_runs_against_the_source(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {"pyproject.toml": "[project]\nname = 'pkg'\n", "src/pkg/__init__.py": "",
                                      "tests/test_pkg.py": "import pkg\n"}))
    assert command.command == "PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} python3 -m pytest"
    assert any(line.startswith("src layout (src/pkg/): PYTHONPATH=src") for line in command.evidence)


def test_src_on_pytests_pythonpath_needs_no_prefix(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {"pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
                                      "src/pkg/__init__.py": "", "tests/test_pkg.py": ""}))
    assert command.command == "python3 -m pytest"
    assert "src layout (src/pkg/): pyproject.toml [tool.pytest.ini_options] puts src on pytest's pythonpath" \
        in command.evidence


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"tests/__init__.py": "", "tests/test_a.py": "import unittest\nclass A(unittest.TestCase): pass\n"},
         "python3 -m unittest discover -s tests -t ."),
        ({"tests/test_a.py": "from unittest import TestCase\nclass A(TestCase): pass\n"},
         "python3 -m unittest discover -s tests"),
        ({"test_a.py": "import unittest\nclass A(unittest.TestCase): pass\n"}, "python3 -m unittest discover"),
        ({"src/pkg/__init__.py": "", "src/pkg/tests/__init__.py": "",
          "src/pkg/tests/stock_test.py": "import unittest\nclass A(unittest.TestCase): pass\n"},
         "PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} python3 -m unittest discover -s src/pkg/tests -t src "
         "-p '*_test.py'"),
    ],
)
def test_unittest_only_suites(tmp_path: Path, files: dict[str, str], command: str) -> None:
    found_command = found(_write(tmp_path, files))
    assert (found_command.command, found_command.runner, found_command.reports) == (
        command, "unittest", "unittest-verbose")


@pytest.mark.parametrize(
    "extra",
    [
        {"tests/test_b.py": "def test_b(): pass\n"},  # one pytest-style file
        {"tests/test_b.py": "import unittest\nimport pytest\nclass B(unittest.TestCase): pass\n"},
        {"conftest.py": ""},
        {"tox.ini": "[testenv]\ncommands = pytest {posargs}\n"},
    ],
)
def test_any_sign_of_pytest_makes_it_pytest(tmp_path: Path, extra: dict[str, str]) -> None:
    files = {"tests/test_a.py": "import unittest\nclass A(unittest.TestCase): pass\n", **extra}
    assert found(_write(tmp_path, files)).runner == "pytest"


def test_tox_and_nox_are_evidence_not_the_command(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {
        "tox.ini": "[tox]\nenvlist = py311\n\n[testenv]\ndeps = pytest\ncommands =\n    pytest {posargs} tests\n",
        "noxfile.py": "import nox\n\n@nox.session\ndef tests(session):\n    session.run('pytest')\n"}))
    assert command.command == "python3 -m pytest"
    assert command.evidence == [
        "tox.ini [testenv] commands run pytest (`pytest {posargs} tests`); pytest runs directly, as tox builds "
        "its environments from the network",
        "noxfile.py runs pytest; pytest runs directly, as nox builds its environments from the network",
    ]


def test_tox_running_unittest_chooses_unittest(tmp_path: Path) -> None:
    command = found(_write(tmp_path, {"tox.ini": "[testenv]\ncommands = python -m unittest discover\n",
                                      "tests/test_a.py": "import unittest\nclass A(unittest.TestCase): pass\n"}))
    assert command.runner == "unittest"


@pytest.mark.parametrize(
    ("files", "command", "runner", "evidence"),
    [
        ({"package.json": json.dumps({"scripts": {"test": "jest --ci"}})}, "npm test", "npm",
         "package.json scripts.test = `jest --ci`"),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, "cargo test --no-fail-fast", "cargo",
         "Cargo.toml at the root; --no-fail-fast, so every test binary runs"),
        ({"go.mod": "module example.com/x\n", "x_test.go": ""}, "go test ./...", "go", "go.mod at the root"),
        ({"Makefile": "build:\n\tcc x.c\n\ntest: build\n\t./run-tests --all\n"}, "make test", "make",
         "Makefile target `test`: ./run-tests --all"),
        ({"Makefile": "check:\n\t./verify"}, "make check", "make", "Makefile target `check`: ./verify"),
    ],
)
def test_other_ecosystems(tmp_path: Path, files: dict[str, str], command: str, runner: str, evidence: str) -> None:
    found_command = found(_write(tmp_path, files))
    assert (found_command.command, found_command.runner, found_command.evidence[0]) == (command, runner, evidence)
    assert found_command.per_test == (runner == "cargo")


def test_python_comes_before_npm_and_npm_before_make(tmp_path: Path) -> None:
    both = _write(tmp_path / "a", {"pyproject.toml": "[tool.pytest.ini_options]\n",
                                   "package.json": json.dumps({"scripts": {"test": "jest"}})})
    assert found(both).runner == "pytest"
    js = _write(tmp_path / "b", {"package.json": json.dumps({"scripts": {"test": "vitest"}}),
                                 "Makefile": "test:\n\tnpm test\n"})
    assert found(js).runner == "npm"


@pytest.mark.parametrize(
    ("files", "note"),
    [
        ({"package.json": json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})},
         "package.json's test script is npm init's placeholder, which tests nothing"),
        ({"package.json": "{not json"}, "package.json is not valid JSON"),
        ({"Makefile": "TEST := 1\ntest_data:\n\ttrue\n"}, "Makefile has no test or check target"),
        ({"pyproject.toml": "[tool.pytest\n"}, "pyproject.toml is not valid TOML"),
    ],
)
def test_nothing_found_says_what_was_seen(tmp_path: Path, files: dict[str, str], note: str) -> None:
    result = discover(_write(tmp_path, files))
    assert isinstance(result, NoTestCommand)
    assert result.reason.startswith("no tests found")
    assert any(line.startswith(note) for line in result.evidence), result.evidence


def test_symlinks_out_of_the_repo_are_not_read(tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside", {"pyproject.toml": "[tool.pytest.ini_options]\n"})
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").symlink_to(outside / "pyproject.toml")
    assert isinstance(discover(repo), NoTestCommand)


def test_a_sandbox_is_a_file_access_too(tmp_path: Path) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    with LocalBackend().start(SandboxSpec(workspace=repo)) as sandbox:
        assert discover_test_command(sandbox) == discover(repo)
    command = found(repo)
    assert TestCommand.model_validate_json(command.model_dump_json()) == command  # as a checkpoint holds it


@pytest.mark.parametrize(
    ("command", "runner", "reports"),
    [
        ("python3 -m pytest -x tests/unit", "pytest", "junit-xml"),
        ("PYTHONPATH=src pytest", "pytest", "junit-xml"),
        ("cd backend && python -m pytest", "pytest", "junit-xml"),
        (".venv/bin/python -m unittest discover -s tests", "unittest", "unittest-verbose"),
        ("cargo test --workspace", "cargo", "cargo-libtest"),
        ("pytest | tee log", "custom", "exit-code"),  # options appended would go to tee
        ("pytest; echo done", "custom", "exit-code"),
        ("pytest -q  # the quick ones", "custom", "exit-code"),
        ("make test", "make", "exit-code"),
        ("npm test", "npm", "exit-code"),
        ("tox -e py311", "custom", "exit-code"),
        ("pytest 'unclosed", "custom", "exit-code"),
    ],
)
def test_described_commands(command: str, runner: str, reports: str) -> None:
    described = describe_test_command(command, "settings test_command")
    assert (described.command, described.runner, described.reports) == (command, runner, reports)
    assert described.evidence == [f"settings test_command: `{command}`"]


# --- the realistic repositories ----------------------------------------------------------


def test_discovery_of_the_realistic_repositories(tmp_path: Path) -> None:
    src = found(realrepos.src_layout_repo(tmp_path / "src"))
    assert src.command == "PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} python3 -m pytest"
    assert src.evidence[:2] == ["pytest configuration: pyproject.toml [tool.pytest.ini_options] testpaths = ['tests']",
                                "1 test file: tests/test_ops.py"]
    assert "whether or not the environment installed the project" in src.evidence[2]

    shop = found(realrepos.package_tests_repo(tmp_path / "shop"))
    assert (shop.command, shop.evidence) == ("python3 -m pytest", ["1 test file: shop/tests/test_cart.py"])

    stock = found(realrepos.unittest_repo(tmp_path / "stock"))
    assert stock.command == "python3 -m unittest discover -s tests -t ."

    weather = found(realrepos.failing_baseline_repo(tmp_path / "weather"))
    assert weather.evidence[1] == "3 test files: tests/test_charts.py, tests/test_remote.py, tests/test_units.py"

    nothing = discover(realrepos.no_tests_repo(tmp_path / "none"))
    assert isinstance(nothing, NoTestCommand)
    assert nothing.evidence == ["package.json's test script is npm init's placeholder, which tests nothing"]

    greet = found(realrepos.devcontainer_repo(tmp_path / "greet"))
    assert greet.evidence[1] == ("the dev container installs the project (.devcontainer/devcontainer.json "
                                 "postCreateCommand: `pip install -e '.[test]'`)")


@pytest.mark.skipif(not realrepos.system_pytest_available(), reason="/usr/bin/python3 has no pytest")
def test_discovery_names_the_dependencies_the_tests_need(tmp_path: Path) -> None:
    command = found(realrepos.dependency_repo(tmp_path / "report"))
    assert command.command == "python3 -m pytest"
    assert "pyproject.toml [project] dependencies (tinydep) must be installed in the environment for the tests " \
           "to import" in command.evidence


def test_a_dev_container_that_does_not_install_the_project(tmp_path: Path) -> None:
    repo = _write(tmp_path, {".devcontainer.json": '{"image": "python:3.12", "postCreateCommand": '
                                                   '["pip", "install", "-r", "requirements.txt"]}',
                             "requirements.txt": "# pinned\nrequests==2.32\nrich\n", "tests/test_a.py": ""})
    assert found(repo).evidence[1:] == [
        "the dev container (.devcontainer.json) runs postCreateCommand but does not install the project: "
        "the tests run against the source",
        "requirements.txt: 2 requirements the environment must provide",
    ]


def test_discovery_of_a_huge_tree_is_bounded(tmp_path: Path) -> None:
    for i in range(300):
        _write(tmp_path, {f"pkg{i}/tests/test_{j}.py": "import unittest\nclass T(unittest.TestCase): pass\n"
                          for j in range(40)})
    command = found(tmp_path)
    assert command.runner == "unittest"  # 200 files read, all unittest ones
    assert command.evidence[0].startswith("10000 test files: ")  # the listing stops at 10,000 files
