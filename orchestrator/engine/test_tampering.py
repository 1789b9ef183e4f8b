"""Signs in a diff that tests were made green by deleting, skipping or weakening them.

Each finding is a place for the reviewer to look, not a verdict: a test may be removed
with the code it tested, or skipped on a platform for a good reason, and the work should
say so. What counts:
- a test file deleted, or renamed to a name no runner collects;
- a test function or class (Python, JavaScript, Go; Rust `#[test]`s) removed and not
  added again under the same name anywhere in the diff (a move is not a removal, and a
  skip is reported as a skip);
- a skip added: pytest marks, `pytest.skip(`, unittest's skip decorators and `skipTest`,
  `it.skip`/`xit`/`test.skip`/`describe.only` (`.only` skips the rest), Go's `t.Skip`,
  Rust's `#[ignore]`;
- assertion lines removed from a test file, more than were added back (a line that
  comes back anywhere in the diff was moved, not removed);
- test collection narrowed in a configuration file or conftest.py (`--ignore`,
  `--deselect`, `collect_ignore`, `testpaths`, `-k "not …"`, `testPathIgnorePatterns`…).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from unidiff import PatchedFile, PatchSet
from unidiff.errors import UnidiffParseError
from unidiff.patch import Line

FindingKind = Literal["deleted_test_file", "removed_test", "added_skip", "removed_assertions", "narrowed_collection"]

TEST_FILE = re.compile(
    r"(?:^|/)(?:test_[^/]*\.py|[^/]*_test\.py|conftest\.py|[^/]*\.(?:test|spec)\.[cm]?[jt]sx?|[^/]*_test\.go)$"
    r"|(?:^|/)(?:tests?|testing|__tests__|spec)/"
)
CONFIG_FILE = re.compile(
    r"(?:^|/)(?:pytest\.ini|\.pytest\.ini|pyproject\.toml|setup\.cfg|tox\.ini|noxfile\.py|conftest\.py|package\.json"
    r"|(?:jest|vitest)\.config\.[cm]?[jt]s|Makefile|Cargo\.toml)$"
)
CODE_FILE = re.compile(r"\.(?:py|[cm]?[jt]sx?|go|rs)$")
SKIP = re.compile(
    r"@pytest\.mark\.(?:skip|skipif|xfail)\b|\bpytest\.(?:skip|xfail|importorskip)\s*\("
    r"|@(?:unittest\.)?(?:skip|skipIf|skipUnless|expectedFailure)\b|\.skipTest\s*\(|\braise\s+(?:unittest\.)?SkipTest\b"
    r"|\bpytestmark\s*=.*\b(?:skip|skipif|xfail)\b"
    r"|\b(?:it|test|describe|context)\.(?:skip|todo|only)\s*\(|\b(?:xit|xtest|xdescribe|xcontext)\s*\("
    r"|\bt\.Skip(?:f|Now)?\s*\(|#\[ignore\b"
)
NARROWING = re.compile(
    r"--ignore|--deselect|\bcollect_ignore|testPathIgnorePatterns|modulePathIgnorePatterns|\bnorecursedirs\b"
    r"|\btestpaths\b|-k\s*['\"]?not\b|-m\s*['\"]?not\b|\bpytest_(?:ignore_collect|collection_modifyitems)\b"
)
TEST_DEFINITIONS = (
    re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\("),
    re.compile(r"^\s*class\s+(Test\w*)\b"),
    re.compile(r"\b(?:x?it|x?test)(?:\.\w+)?\s*\(\s*(['\"`])(?P<name>.+?)\1"),
    re.compile(r"^func\s+(Test\w+)\s*\(\s*\w+\s+\*testing\.T\b"),
    re.compile(r"^\s*(#\[test\])"),
)
ASSERTION = re.compile(
    r"\bassert\w*\b|\bexpect\s*\(|\bt\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)\s*\(|\b(?:require|assert)\.\w+\s*\("
    r"|\bshould\b|\braises\s*\("
)
COMMENT = re.compile(r"^\s*(?:#(?!\[)|//)")
MOST_FINDINGS = 30


class TestTamperFinding(BaseModel):
    __test__: ClassVar[bool] = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    kind: FindingKind
    path: str
    line: int | None = None
    detail: str


def find_test_tampering(diff: str) -> list[TestTamperFinding]:
    """Findings in a unified diff (`git diff base..head`), in the order of the diff."""
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise ValueError(f"the diff could not be parsed ({exc}); pass the output of `git diff`") from None
    findings: list[TestTamperFinding] = []
    added_names = {name for file in patch for _, name, _ in _definitions(file, added=True)}
    added_texts = {line.value.strip() for file in patch for line in _lines(file, added=True)}
    for file in patch:
        source, target = _path(file.source_file), _path(file.target_file)
        if TEST_FILE.search(source) and (file.is_removed_file or (file.is_rename and not TEST_FILE.search(target))):
            findings.append(_deleted(file, source, target))
            continue
        findings += _removed_tests(file, added_names)
        findings += _added_lines(file)
        if TEST_FILE.search(file.path) and not file.is_added_file:
            findings += _removed_assertions(file, added_texts)
    return findings


def render_tampering(findings: list[TestTamperFinding], most: int = MOST_FINDINGS) -> str:
    """A list for the reviewer's prompt and the report; "" when there is nothing to say."""
    if not findings:
        return ""
    lines = ["Possible test tampering: check each one; a reason given in the work is fine, none is not."]
    for finding in findings[:most]:
        where = f"{finding.path}:{finding.line}" if finding.line else finding.path
        lines.append(f"- {where}: {finding.detail}")
    if len(findings) > most:
        lines.append(f"- and {len(findings) - most} more")
    return "\n".join(lines)


def _deleted(file: PatchedFile, source: str, target: str) -> TestTamperFinding:
    names = [name for _, name, _ in _definitions(file, added=False)]
    tests = f" ({len(names)} test{'s' if len(names) != 1 else ''}: {', '.join(names[:5])}" \
            f"{' …' if len(names) > 5 else ''})" if names else ""
    what = "deleted" if file.is_removed_file else f"renamed to {target}, which is not collected as tests"
    return TestTamperFinding(kind="deleted_test_file", path=source, detail=f"test file {what}{tests}")


def _removed_tests(file: PatchedFile, added_names: set[str]) -> list[TestTamperFinding]:
    findings = []
    removed = Counter(name for _, name, _ in _definitions(file, added=False))
    added_here = Counter(name for _, name, _ in _definitions(file, added=True))
    for line_no, name, text in _definitions(file, added=False):
        # `#[test]` carries no name: it counts as removed when fewer come back in the same file.
        gone = removed[name] > added_here[name] if name == "#[test]" else name not in added_names
        if gone:
            findings.append(TestTamperFinding(kind="removed_test", path=_path(file.source_file), line=line_no,
                                              detail=f"test removed: `{text}`"))
            removed[name] -= 1
    return findings


def _added_lines(file: PatchedFile) -> list[TestTamperFinding]:
    findings = []
    path = file.path
    for line in _lines(file, added=True):
        text = line.value.strip()
        if CODE_FILE.search(path) and SKIP.search(text):
            findings.append(TestTamperFinding(kind="added_skip", path=path, line=line.target_line_no,
                                              detail=f"skip added: `{_short(text)}`"))
        elif CONFIG_FILE.search(path) and NARROWING.search(text):
            findings.append(TestTamperFinding(kind="narrowed_collection", path=path, line=line.target_line_no,
                                              detail=f"test collection narrowed: `{_short(text)}`"))
    return findings


def _removed_assertions(file: PatchedFile, added_texts: set[str]) -> list[TestTamperFinding]:
    """Assertion lines removed and not added back, here or elsewhere in the diff (a moved test keeps its own)."""
    removed = [line for line in _lines(file, added=False)
               if _is_assertion(line.value) and line.value.strip() not in added_texts]
    added = [line for line in _lines(file, added=True) if _is_assertion(line.value)]
    if len(removed) <= len(added):
        return []
    first = removed[0]
    detail = (f"{len(removed)} assertion line{'s' if len(removed) != 1 else ''} removed, {len(added)} added: "
              f"`{_short(first.value.strip())}`")
    return [TestTamperFinding(kind="removed_assertions", path=file.path, line=first.source_line_no, detail=detail)]


def _definitions(file: PatchedFile, added: bool) -> list[tuple[int | None, str, str]]:
    """(line, name, text) of the test definitions among the file's added or removed lines."""
    found = []
    for line in _lines(file, added):
        for pattern in TEST_DEFINITIONS:
            match = pattern.search(line.value)
            if match:
                name = match.groupdict().get("name") or match.group(1)
                found.append((line.target_line_no if added else line.source_line_no, name, _short(line.value.strip())))
                break
    return found


def _lines(file: PatchedFile, added: bool) -> list[Line]:
    return [line for hunk in file for line in hunk if (line.is_added if added else line.is_removed)]


def _is_assertion(text: str) -> bool:
    return bool(ASSERTION.search(text)) and not COMMENT.match(text)


def _path(name: str) -> str:
    return name[2:] if name.startswith(("a/", "b/")) else name


def _short(text: str, most: int = 120) -> str:
    return text if len(text) <= most else f"{text[: most - 1]}…"
