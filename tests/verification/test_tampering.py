"""Test tampering found in real git diffs: deletions, skips, weakened assertions, narrowed collection."""

from __future__ import annotations

from pathlib import Path

import pytest
import realrepos
from helpers import git, make_repo

from orchestrator.engine.test_tampering import TestTamperFinding, find_test_tampering, render_tampering

BASE_FILES = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
                          "    assert add(0, 0) == 0\n\n\n"
                          "def test_negative():\n    assert add(-1, -1) == -2\n\n\nclass TestBig:\n"
                          "    def test_big(self):\n        assert add(10**9, 1) == 10**9 + 1\n",
    "web/cart.test.js": "test('totals', () => {\n  expect(total([1, 2])).toBe(3);\n});\n\n"
                        "it('is empty', () => {\n  expect(total([])).toBe(0);\n});\n",
    "pkg/calc_test.go": "package pkg\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n"
                        "\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"no\")\n\t}\n}\n",
    "src/lib.rs": "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\n#[cfg(test)]\nmod tests {\n    #[test]\n"
                  "    fn adds() { assert_eq!(super::add(1, 1), 2); }\n\n    #[test]\n    fn zero() {}\n}\n",
    "pyproject.toml": "[tool.pytest.ini_options]\naddopts = \"-q\"\n",
}


def tampered(tmp_path: Path, change: dict[str, str | None]) -> list[TestTamperFinding]:
    """Findings in the git diff of `change` (a path's new text, or None to delete it) against BASE_FILES."""
    repo = make_repo(tmp_path / "repo", BASE_FILES)
    for path, text in change.items():
        if text is None:
            (repo / path).unlink()
        else:
            realrepos.write(repo, {path: text})
    realrepos.commit_all(repo, "change")
    return find_test_tampering(git(repo, "diff", "HEAD~1..HEAD"))


def kinds(findings: list[TestTamperFinding]) -> list[tuple[str, str, int | None]]:
    return [(f.kind, f.path, f.line) for f in findings]


def test_an_honest_change_has_no_findings(tmp_path: Path) -> None:
    tests = BASE_FILES["tests/test_calc.py"]
    findings = tampered(tmp_path, {
        "calc.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
        "tests/test_calc.py": tests.replace("from calc import add", "from calc import add, sub")
        + "\n\ndef test_sub():\n    assert sub(3, 1) == 2\n",
    })
    assert findings == []


def test_deleted_and_renamed_test_files(tmp_path: Path) -> None:
    findings = tampered(tmp_path, {"tests/test_calc.py": None, "pkg/calc_test.go": None})
    assert [f.detail for f in findings] == [
        "test file deleted (1 test: TestAdd)",
        "test file deleted (4 tests: test_add, test_negative, TestBig, test_big)",
    ]
    repo = make_repo(tmp_path / "renamed", BASE_FILES)
    git(repo, "mv", "tests/test_calc.py", "calc_checks.py")
    realrepos.commit_all(repo, "rename")
    findings = find_test_tampering(git(repo, "diff", "-M", "HEAD~1..HEAD"))
    assert [f.detail for f in findings] == ["test file renamed to calc_checks.py, which is not collected as tests"]


def test_removed_tests_but_not_moved_ones(tmp_path: Path) -> None:
    tests = BASE_FILES["tests/test_calc.py"]
    without_negative = tests.replace("def test_negative():\n    assert add(-1, -1) == -2\n\n\n", "")
    findings = tampered(tmp_path, {
        "tests/test_calc.py": without_negative.replace("class TestBig:", "class TestLarge:"),
        "tests/test_more.py": "from calc import add\n\n\ndef test_negative():\n    assert add(-1, -1) == -2\n",
        "web/cart.test.js": "test('totals', () => {\n  expect(total([1, 2])).toBe(3);\n});\n",
    })
    # test_negative moved to another file; TestBig was renamed; 'is empty' is gone.
    assert [(f.kind, f.path, f.detail) for f in findings] == [
        ("removed_test", "tests/test_calc.py", "test removed: `class TestBig:`"),
        ("removed_test", "web/cart.test.js", "test removed: `it('is empty', () => {`"),
        ("removed_assertions", "web/cart.test.js", "1 assertion line removed, 0 added: `expect(total([])).toBe(0);`"),
    ]


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("tests/test_calc.py", "def test_add():", "@pytest.mark.skip(reason='later')\ndef test_add():"),
        ("tests/test_calc.py", "def test_add():", "@pytest.mark.xfail\ndef test_add():"),
        ("tests/test_calc.py", "def test_add():", "@unittest.skipIf(True, 'x')\ndef test_add():"),
        ("tests/test_calc.py", "def test_add():\n", "def test_add():\n    pytest.skip('no time')\n"),
        ("tests/test_calc.py", "    def test_big(self):\n", "    def test_big(self):\n        self.skipTest('slow')\n"),
        ("tests/test_calc.py", "from calc import add\n", "import pytest\nfrom calc import add\n\n"
                                                         "pytestmark = pytest.mark.skip\n"),
        ("web/cart.test.js", "it('is empty'", "it.skip('is empty'"),
        ("web/cart.test.js", "it('is empty'", "xit('is empty'"),
        ("web/cart.test.js", "test('totals'", "test.only('totals'"),
        ("pkg/calc_test.go", "func TestAdd(t *testing.T) {\n", "func TestAdd(t *testing.T) {\n\tt.Skip(\"flaky\")\n"),
        ("src/lib.rs", "    fn zero", "    #[ignore]\n    fn zero"),
    ],
)
def test_added_skips(tmp_path: Path, path: str, old: str, new: str) -> None:
    text = BASE_FILES[path].replace(old, new, 1)
    findings = tampered(tmp_path, {path: text})
    assert [f.kind for f in findings] == ["added_skip"]
    line_no, added = [(n, line) for n, line in enumerate(text.splitlines(), 1)
                      if line not in BASE_FILES[path].splitlines()][-1]
    assert (findings[0].detail, findings[0].line) == (f"skip added: `{added.strip()}`", line_no)


def test_weakened_assertions(tmp_path: Path) -> None:
    tests = BASE_FILES["tests/test_calc.py"]
    findings = tampered(tmp_path, {
        "tests/test_calc.py": tests.replace("    assert add(0, 0) == 0\n", "    # assert add(0, 0) == 0\n"),
        "pkg/calc_test.go": BASE_FILES["pkg/calc_test.go"].replace("\t\tt.Fatal(\"no\")\n", "\t\treturn\n"),
        # An assertion rewritten is not a removal; a comment mentioning assert is not an assertion.
        "src/lib.rs": BASE_FILES["src/lib.rs"].replace("assert_eq!(super::add(1, 1), 2);",
                                                       "assert_eq!(super::add(1, 1), 2, \"one and one\"); // assert"),
    })
    assert kinds(findings) == [("removed_assertions", "pkg/calc_test.go", 7),
                               ("removed_assertions", "tests/test_calc.py", 6)]
    assert findings[1].detail == "1 assertion line removed, 0 added: `assert add(0, 0) == 0`"


def test_rust_tests_removed_are_counted(tmp_path: Path) -> None:
    without_zero = BASE_FILES["src/lib.rs"].replace("    #[test]\n    fn zero() {}\n", "")
    findings = tampered(tmp_path, {"src/lib.rs": without_zero})
    assert [(f.kind, f.detail) for f in findings] == [("removed_test", "test removed: `#[test]`")]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = \"-q --ignore=tests/test_calc.py\"\n"),
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = \"-q -k 'not negative'\"\n"),
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = \"-q\"\ntestpaths = [\"docs\"]\n"),
        ("tests/conftest.py", "collect_ignore = ['test_calc.py']\n"),
        ("package.json", '{"jest": {"testPathIgnorePatterns": ["cart"]}}\n'),
    ],
)
def test_narrowed_collection(tmp_path: Path, path: str, text: str) -> None:
    findings = tampered(tmp_path, {path: text})
    assert [(f.kind, f.path) for f in findings] == [("narrowed_collection", path)]


def test_rendering(tmp_path: Path) -> None:
    findings = tampered(tmp_path, {"tests/test_calc.py": None,
                                   "web/cart.test.js": BASE_FILES["web/cart.test.js"].replace("it(", "xit(")})
    assert render_tampering(findings).splitlines() == [
        "Possible test tampering: check each one; a reason given in the work is fine, none is not.",
        "- tests/test_calc.py: test file deleted (4 tests: test_add, test_negative, TestBig, test_big)",
        "- web/cart.test.js:5: skip added: `xit('is empty', () => {`",
    ]
    assert render_tampering(findings, most=1).splitlines()[-1] == "- and 1 more"
    assert render_tampering([]) == ""


def test_a_diff_that_is_not_one() -> None:
    with pytest.raises(ValueError, match=r"the diff could not be parsed .*; pass the output of `git diff`"):
        find_test_tampering("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-only one line\n")
