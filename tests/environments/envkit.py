"""Repositories whose environments must be set up, built offline: their third-party wheels are written
here and committed under wheels/, and pip is told (by [environment] env, as an air-gapped user would) to
install from there only. The venvs see the image's setuptools and pytest (Debian's), so nothing is
downloaded: no network anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import ScriptedJobs, approve, call, coder, make_repo, plan_entry, subtask
from realrepos import build_wheel, commit_all

from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job, Task

OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/workspace/wheels", "PIP_NO_BUILD_ISOLATION": "0"}
BACKENDS = [
    pytest.param("bubblewrap", marks=[pytest.mark.bubblewrap,
                                      pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bwrap")]),
    pytest.param("docker", marks=pytest.mark.docker),
]


def dependency_repo(path: Path) -> Path:
    """`report` needs `tinydep`, a third-party package (a wheel in wheels/), and tests it through it."""
    repo = make_repo(path, {
        "pyproject.toml": '[project]\nname = "report"\nversion = "0.1"\ndependencies = ["tinydep>=1.0"]\n\n'
                          '[project.optional-dependencies]\ntest = ["pytest"]\n\n'
                          '[tool.setuptools]\npackages = ["report"]\n\n'
                          '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        "report/__init__.py": "from tinydep import shout\n\n\ndef headline(text):\n    return shout(text.strip())\n",
        "tests/test_report.py": "from report import headline\n\n\ndef test_headline():\n"
                                "    assert headline(' sales up ') == 'SALES UP!'\n",
    })
    build_wheel(repo / "wheels", "tinydep", "1.0", {"tinydep/__init__.py": "def shout(text):\n"
                                                                           "    return text.upper() + '!'\n"})
    commit_all(repo, "vendor tinydep")
    return repo


def src_layout_repo(path: Path) -> Path:
    """A src layout with no configuration putting src on the path: it imports only once installed."""
    return make_repo(path, {
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\n\n[tool.pytest.ini_options]\n'
                          'testpaths = ["tests"]\n',
        "src/calc/__init__.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        "wheels/.keep": "",
    })


def devcontainer_repo(path: Path, base: str) -> Path:
    """A dev container built from a Dockerfile FROM `base` (local: nothing is pulled; pip offline), whose
    postCreateCommand (argv form) and onCreateCommand (object form) set the project up."""
    return make_repo(path, {
        ".devcontainer/devcontainer.json": "// the development environment\n{\n"
                                           '  "build": {"dockerfile": "Dockerfile", "context": ".."},\n'
                                           '  "containerEnv": {"GREETING": "hello"},\n'
                                           '  "onCreateCommand": {"marker": "echo created > /etc/greet-created"},\n'
                                           '  "postCreateCommand": ["pip", "install", "--no-deps", "-e", "."],\n}\n',
        ".devcontainer/Dockerfile": f"FROM {base}\n"
                                    "ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_NO_INDEX=1 PIP_NO_BUILD_ISOLATION=0\n",
        "pyproject.toml": '[project]\nname = "greet"\nversion = "0.1"\n\n[tool.setuptools]\npackages = ["greet"]\n',
        "greet/__init__.py": "import os\n\n\ndef hello(name):\n    return f\"{os.environ['GREETING']} {name}\"\n",
        "tests/test_greet.py": "import pathlib\n\nfrom greet import hello\n\n\ndef test_hello():\n"
                               "    assert hello('ada') == 'hello ada'\n\n\ndef test_set_up_once():\n"
                               "    assert pathlib.Path('/etc/greet-created').read_text() == 'created\\n'\n",
    })


def one_change_script(path: str, old: str, new: str) -> list[dict[str, Any]]:
    """A plan of one subtask whose coder edits `path` and submits; the reviewer approves."""
    return [
        plan_entry(subtask("s1", "write it")),
        coder("s1", call("edit_file", path=path, old=old, new=new)),
        coder("s1", call("submit", summary="edited")),
        approve("s1"),
    ]


def run_job(jobs: ScriptedJobs, repo: Path, script: list[dict[str, Any]], **settings: Any) -> tuple[Director, Job]:
    director = jobs.runner(script, **settings)
    job = director.submit(Task(instruction="write it", repo=str(repo)))
    return director, director.run(job.id)


def kinds(director: Director, job: Job, kind: str) -> list[Any]:
    return [e for e in director.events(job.id) if e.kind == kind]
