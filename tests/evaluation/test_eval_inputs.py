"""Reading the inputs: SWE-bench JSONL as the official files have it, the models file, pytest's summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalkit import shipyard_eval

from orchestrator.apps.evaluation import mini_suite
from orchestrator.apps.evaluation.grading import PytestRunner, patched_paths
from orchestrator.apps.evaluation.instances import InstanceError, load_instances
from orchestrator.apps.evaluation.models_file import ModelsFileError, load_models_file

OFFICIAL = {
    "repo": "astropy/astropy", "instance_id": "astropy__astropy-12907",
    "base_commit": "d16bfe05a744909de4b27f5875fe0d4ed41ce607",
    "patch": "diff --git a/astropy/modeling/separable.py b/astropy/modeling/separable.py\n",
    "test_patch": "diff --git a/astropy/modeling/tests/test_separable.py b/astropy/modeling/tests/test_separable.py\n",
    "problem_statement": "Modeling's `separability_matrix` does not compute separability correctly for nested "
                         "CompoundModels",
    "hints_text": "", "created_at": "2022-03-03T15:14:54Z", "version": "4.3",
    "FAIL_TO_PASS": "[\"astropy/modeling/tests/test_separable.py::test_separable[compound_model6-result6]\"]",
    "PASS_TO_PASS": "[\"astropy/modeling/tests/test_separable.py::test_coord_matrix\"]",
    "environment_setup_commit": "298ccb478e6bf092953bca67a3d29dc6c35f6752",
}


def write_jsonl(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_an_official_swe_bench_line_unchanged(tmp_path: Path) -> None:
    [instance] = load_instances(write_jsonl(tmp_path / "lite.jsonl", json.dumps(OFFICIAL)))
    assert instance.FAIL_TO_PASS == [
        "astropy/modeling/tests/test_separable.py::test_separable[compound_model6-result6]"]
    assert instance.PASS_TO_PASS == ["astropy/modeling/tests/test_separable.py::test_coord_matrix"]
    assert instance.repo == "astropy/astropy" and instance.repo_path is None and instance.image is None


@pytest.mark.parametrize(("lines", "message"), [
    (["{\"instance_id\": \"a\"", ""], r"i\.jsonl:1: not valid JSON"),
    ([json.dumps(OFFICIAL), "[1, 2]"], r"i\.jsonl:2: not a JSON object but an array"),
    ([json.dumps(OFFICIAL), "", json.dumps({**OFFICIAL, "base_commit": None})], r"i\.jsonl:3: base_commit: "),
    ([json.dumps({k: v for k, v in OFFICIAL.items() if k != "test_patch"})], r"i\.jsonl:1: test_patch: Field required"),
    ([json.dumps({**OFFICIAL, "FAIL_TO_PASS": "not json"})], r"i\.jsonl:1: FAIL_TO_PASS: .*JSON-encoded list"),
    ([json.dumps({**OFFICIAL, "instance_id": "../etc"})], r"i\.jsonl:1: instance_id: .*names files"),
    ([json.dumps(OFFICIAL), json.dumps(OFFICIAL)],
     r"i\.jsonl:2: instance astropy__astropy-12907 already appears on line 1"),
    ([""], r"i\.jsonl: no instances"),
])
def test_a_bad_line_is_named_in_one_line(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(InstanceError, match=message) as caught:
        load_instances(write_jsonl(tmp_path / "i.jsonl", *lines))
    assert "\n" not in str(caught.value)


def test_the_bundled_instances_are_valid_and_name_the_commits_of_their_repos(tmp_path: Path) -> None:
    instances = load_instances(mini_suite.INSTANCES)
    assert len(instances) == 8 and len({i.repo for i in instances}) == 3
    assert all(i.patch and i.FAIL_TO_PASS and i.PASS_TO_PASS for i in instances)
    repos = mini_suite.materialize(tmp_path)  # MiniSuiteError if a shipped file changed
    assert sorted(p.name for p in (repos / mini_suite.OWNER).iterdir()) == ["calc", "textkit", "units"]


def test_models_file(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models.default]\nmodel = "gpt-4.1"\n\n[models.coder]\nmodel = "gpt-4.1-mini"\n'
                    'base_url = "http://localhost:8000/v1"\n\n[[candidate_models]]\nmodel = "qwen"\n')
    models = load_models_file(path)
    assert models.models["coder"].base_url == "http://localhost:8000/v1" and models.candidate_models[0].model == "qwen"
    for text, message in (
        ('[models.default]\nmodel = "x"\n[models.painter]\nmodel = "y"\n', r"unknown role\(s\) \['painter'\]"),
        ('[models.coder]\nmodel = "x"\n', r"give \[models.default\] or a table for every role"),
        ('[models.default]\nmodl = "x"\n', r"models.default.model: Field required"),
        ('[models.default\n', r"not valid TOML"),
    ):
        path.write_text(text)
        with pytest.raises(ModelsFileError, match=message):
            load_models_file(path)


def test_pytest_summary_is_read_per_test_id() -> None:
    runner = PytestRunner()
    assert runner.command(["tests/a.py::test_x", "tests/a.py::T::test_y", "tests/b c.py::test_z"]).endswith(
        "--continue-on-collection-errors tests/a.py 'tests/b c.py'")
    output = ("=== short test summary info ===\nPASSED tests/a.py::test_x\nPASSED tests/a.py::test_p[1 - 2]\n"
              "FAILED tests/a.py::T::test_y - AssertionError: assert 1 == 2\nXFAIL tests/a.py::test_w - reason\n"
              "ERROR tests/b.py - ImportError: no module\nSKIPPED [1] tests/a.py:3: later\n"
              "FAIL tests/a.py::test_old\n")  # old pytest versions
    assert runner.parse(output) == {"tests/a.py::test_x": "passed", "tests/a.py::test_p[1 - 2]": "passed",
                                    "tests/a.py::T::test_y": "failed", "tests/a.py::test_w": "xfail",
                                    "tests/b.py": "error", "tests/a.py::test_old": "failed"}


def test_patched_paths() -> None:
    patch = ("diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n"
             "diff --git a/tests/old.py b/tests/new.py\nsimilarity index 90%\n")
    assert patched_paths(patch) == ["tests/test_a.py", "tests/old.py", "tests/new.py"]


def test_cli_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", json.dumps(OFFICIAL), "{oops")
    result = shipyard_eval(bad, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2 and "bad.jsonl:2: not valid JSON" in result.stderr
    neither = shipyard_eval("-o", tmp_path / "out", cwd=tmp_path)
    assert neither.returncode == 2 and "give an INSTANCES.jsonl file or --mini-suite" in neither.stderr
    unknown = shipyard_eval("--mini-suite", "-i", "nope", "--gold", "-o", tmp_path / "out", cwd=tmp_path)
    assert unknown.returncode == 2 and "no instance nope in the file" in unknown.stderr
