"""The repository's instructions for agents: which files apply where, in which order, within a limit."""

from __future__ import annotations

from pathlib import Path

import realrepos
from helpers import make_repo

from agents.repo_files import HostRepoFiles
from agents.repo_instructions import read_repo_instructions, sections_on_testing
from sandboxes.base import SandboxSpec
from sandboxes.local import LocalBackend

CONTRIBUTING = """\
# Contributing

Be kind.

## Setup

    pip install -e .

## Running the tests

Run `pytest -q`; the slow ones need `-m slow`.

```sh
# not a heading: a comment in a code block
pytest -q
```

### Test data

Fixtures live in tests/data.

## Style

ruff format
"""

CONTRIBUTING_RST = """\
============
Contributing
============

Setup
-----

pip install -e .

Testing
-------

Run tox -e py311.

Unit tests
~~~~~~~~~~

In tests/unit.

Releases
--------

Tag and push.
"""


def repo_with_instructions(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "CONTRIBUTING.md": CONTRIBUTING,
        ".github/copilot-instructions.md": "Prefer small functions.\n",
        "AGENTS.md": "Run `make lint` before committing.\n",
        "CLAUDE.md": "Run `make lint` before committing.\n",  # the same text: read once
        "services/AGENTS.md": "Services talk JSON only.\n",
        "services/billing/AGENTS.md": "Money is integer cents.\n",
        "services/billing/CLAUDE.md": "Never log card numbers.\n",
        "services/billing/invoice.py": "",
        "web/AGENTS.md": "Use TypeScript.\n",
        "docs/CLAUDE.md": "Docs are in English.\n",
    })


def test_nested_instructions_apply_to_their_subtree_nearest_last(tmp_path: Path) -> None:
    repo = repo_with_instructions(tmp_path)
    found = read_repo_instructions(HostRepoFiles(repo), touched=["services/billing/invoice.py"])
    assert found.sources == ["CONTRIBUTING.md (Running the tests)", ".github/copilot-instructions.md", "AGENTS.md",
                             "services/AGENTS.md", "services/billing/AGENTS.md", "services/billing/CLAUDE.md"]
    assert found.text.endswith("### services/billing/AGENTS.md\n\nMoney is integer cents.\n\n"
                               "### services/billing/CLAUDE.md\n\nNever log card numbers.")
    assert "Fixtures live in tests/data." in found.text and "ruff format" not in found.text
    assert found.elsewhere == ["docs/CLAUDE.md", "web/AGENTS.md"]
    assert not found.cut


def test_the_root_only_without_touched_paths_and_directories_as_paths(tmp_path: Path) -> None:
    repo = repo_with_instructions(tmp_path)
    files = HostRepoFiles(repo)
    assert read_repo_instructions(files).sources[-1] == "AGENTS.md"
    assert read_repo_instructions(files, touched=["web", "services/"]).sources[2:] == [
        "AGENTS.md", "services/AGENTS.md", "web/AGENTS.md"]


def test_a_sandbox_reads_the_same(tmp_path: Path) -> None:
    repo = repo_with_instructions(tmp_path)
    with LocalBackend().start(SandboxSpec(workspace=repo)) as sandbox:
        assert read_repo_instructions(sandbox, ["web/app.ts"]) == read_repo_instructions(HostRepoFiles(repo),
                                                                                        ["web/app.ts"])


def test_the_limit_cuts_the_general_parts_first(tmp_path: Path) -> None:
    contributing, root = "# Testing\n\n" + "Run every test. " * 400, "Root rules. " * 100
    repo = make_repo(tmp_path / "repo", {"CONTRIBUTING.md": contributing, "AGENTS.md": root,
                                         "pkg/AGENTS.md": "Package rules.\n"})
    contributing_size, root_size = len(contributing.strip()), len(root.strip())
    files = HostRepoFiles(repo)
    found = read_repo_instructions(files, ["pkg/x.py"], max_chars=2_000)
    assert found.cut and len(found.text) <= 2_000
    assert found.text.endswith(f"\n\n### AGENTS.md\n\n{root.strip()}\n\n### pkg/AGENTS.md\n\n"
                               "Package rules.")
    assert found.text.startswith("### CONTRIBUTING.md (Testing)\n\n# Testing\n\nRun every test.")
    assert "\n[... CONTRIBUTING.md (Testing) cut: " in found.text
    smaller = read_repo_instructions(files, ["pkg/x.py"], max_chars=1_300)
    assert smaller.text.startswith("[Left out, over the 1300-character limit of instructions (read them yourself): "
                                   f"CONTRIBUTING.md (Testing) ({contributing_size} characters)]\n\n"
                                   "### AGENTS.md\n\nRoot rules.")
    tiny = read_repo_instructions(files, ["pkg/x.py"], max_chars=100)
    assert tiny.text == ("[Left out, over the 100-character limit of instructions (read them yourself): "
                         f"CONTRIBUTING.md (Testing) ({contributing_size} characters), "
                         f"AGENTS.md ({root_size} characters)]\n\n"
                         "### pkg/AGENTS.md\n\nPackage rules.")


def test_no_instructions(tmp_path: Path) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    found = read_repo_instructions(HostRepoFiles(repo), ["shop/cart.py"])
    assert (found.text, found.sources, found.elsewhere) == ("", [], [])


def test_a_symlink_out_of_the_repo_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("the user's private notes")
    repo = make_repo(tmp_path / "repo", {"README.md": ""})
    (repo / "AGENTS.md").symlink_to(secret)
    assert read_repo_instructions(HostRepoFiles(repo)).sources == []


def test_sections_on_testing_of_markdown_and_rst() -> None:
    assert sections_on_testing(CONTRIBUTING) == [(
        "Running the tests",
        "## Running the tests\n\nRun `pytest -q`; the slow ones need `-m slow`.\n\n```sh\n"
        "# not a heading: a comment in a code block\npytest -q\n```\n\n### Test data\n\nFixtures live in tests/data.",
    )]
    assert sections_on_testing(CONTRIBUTING_RST, rst=True) == [
        ("Testing", "Testing\n-------\n\nRun tox -e py311.\n\nUnit tests\n~~~~~~~~~~\n\nIn tests/unit."),
    ]
    assert sections_on_testing("# Contributing\n\nNo testing section here.\n") == []


def test_contributing_rst_is_found(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"CONTRIBUTING.rst": CONTRIBUTING_RST})
    found = read_repo_instructions(HostRepoFiles(repo))
    assert found.sources == ["CONTRIBUTING.rst (Testing)"]
    assert "Run tox -e py311." in found.text and "Tag and push" not in found.text
