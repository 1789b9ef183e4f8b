"""The agents' tools, run through real sandboxes on real files."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from agents.tools import ALL_TOOLS, READ_ONLY_TOOLS, Tool, ToolLimits, Toolset
from sandboxes.base import ExecResult, Sandbox, SandboxSpec

PY_SOURCE = """\
def add_total(a, b):
    return a + b


def sub_total(a, b):
    return a - b


class Cart:
    def total(self):
        return add_total(1, 2)
"""


def _start(backend: str, workspace: Path) -> Sandbox:
    spec = SandboxSpec(workspace=workspace)
    if backend == "local":
        from sandboxes.local import LocalBackend

        return LocalBackend().start(spec)
    if not shutil.which("bwrap") or importlib.util.find_spec("sandboxes.bubblewrap") is None:
        pytest.skip("bwrap or the bubblewrap backend is not installed")
    from sandboxes.bubblewrap import BubblewrapBackend

    return BubblewrapBackend().start(spec)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "cart.py").write_text(PY_SOURCE)
    (ws / "pkg" / "notes.md").write_text("add_total is documented here\n")
    (ws / "README.md").write_text("# demo\n")
    return ws


@pytest.fixture(params=["local", pytest.param("bubblewrap", marks=pytest.mark.bubblewrap)])
def sandbox(request: pytest.FixtureRequest, workspace: Path) -> Iterator[Sandbox]:
    box = _start(request.param, workspace)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def tools(sandbox: Sandbox) -> Toolset:
    return Toolset(sandbox)


# --- view_file


def test_view_file_numbers_lines_like_cat_n(tools: Toolset) -> None:
    obs = tools.call("view_file", {"path": "pkg/cart.py"})
    assert obs.ok and not obs.done
    lines = obs.text.splitlines()
    assert lines[0] == "     1\tdef add_total(a, b):"
    assert lines[-1] == "    11\t        return add_total(1, 2)"
    assert "showing lines" not in obs.text


def test_view_file_range_and_bad_ranges(tools: Toolset) -> None:
    obs = tools.call("view_file", '{"path": "/workspace/pkg/cart.py", "start_line": 5, "end_line": 6}')
    assert obs.ok
    assert obs.text.splitlines()[:2] == ["     5\tdef sub_total(a, b):", "     6\t    return a - b"]
    assert "showing lines 5-6 of 11" in obs.text

    past = tools.call("view_file", {"path": "pkg/cart.py", "start_line": 40})
    assert not past.ok and "has 11 lines" in past.text
    backwards = tools.call("view_file", {"path": "pkg/cart.py", "start_line": 5, "end_line": 2})
    assert not backwards.ok and "before start_line" in backwards.text


def test_view_file_binary_and_non_utf8(tools: Toolset, workspace: Path) -> None:
    (workspace / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    obs = tools.call("view_file", {"path": "logo.png"})
    assert not obs.ok and "binary file" in obs.text

    (workspace / "latin1.txt").write_bytes("café crème\n".encode("latin-1"))
    obs = tools.call("view_file", {"path": "latin1.txt"})
    assert obs.ok
    assert "caf\ufffd cr\ufffdme" in obs.text
    assert "not valid UTF-8" in obs.text


def test_view_file_huge_file_is_shown_in_parts(tools: Toolset, workspace: Path) -> None:
    (workspace / "big.txt").write_text("".join(f"line {i}\n" for i in range(1, 5001)))
    (workspace / "wide.txt").write_text("x" * 5000 + "\n")
    limited = Toolset(tools.sandbox, limits=ToolLimits(view_max_lines=50))

    obs = limited.call("view_file", {"path": "big.txt"})
    assert obs.ok
    assert obs.text.splitlines()[49] == "    50\tline 50"
    assert "line 51" not in obs.text
    assert "showing lines 1-50 of 5000" in obs.text and "start_line and end_line" in obs.text

    wide = limited.call("view_file", {"path": "wide.txt"})
    assert "[4500 more characters]" in wide.text and len(wide.text) < 700


def test_view_file_empty_and_missing(tools: Toolset, workspace: Path) -> None:
    (workspace / "empty.py").write_text("")
    assert tools.call("view_file", {"path": "empty.py"}).text == "empty.py is empty."
    missing = tools.call("view_file", {"path": "nope.py"})
    assert not missing.ok and "no such file" in missing.text


# --- list_files


def test_list_files_pattern_and_bound(tools: Toolset, workspace: Path) -> None:
    for i in range(30):
        (workspace / "pkg" / f"mod{i:02}.py").write_text("")
    obs = tools.call("list_files", {"pattern": "*.md"})
    assert obs.ok and obs.text.splitlines() == ["README.md", "pkg/notes.md"]
    assert tools.call("list_files", {"pattern": "**/cart.py"}).text == "pkg/cart.py"

    limited = Toolset(tools.sandbox, limits=ToolLimits(list_max_entries=10))
    obs = limited.call("list_files", {"path": "pkg"})
    assert obs.text.splitlines()[0] == "pkg/cart.py"
    assert len(obs.text.splitlines()) == 11
    assert obs.text.endswith("[22 more not shown; narrow with path or pattern]")

    none = tools.call("list_files", {"pattern": "*.rs"})
    assert none.ok and "match '*.rs'" in none.text


# --- search_text


def test_search_text_regex_glob_and_no_match(tools: Toolset) -> None:
    obs = tools.call("search_text", {"pattern": r"def \w+_total\("})
    assert obs.ok
    assert obs.text.splitlines() == ["pkg/cart.py:1:def add_total(a, b):", "pkg/cart.py:5:def sub_total(a, b):"]

    everywhere = tools.call("search_text", {"pattern": "add_total"})
    assert "pkg/notes.md:1:add_total is documented here" in everywhere.text
    only_py = tools.call("search_text", {"pattern": "add_total", "glob": "*.py"})
    assert "notes.md" not in only_py.text and "pkg/cart.py:11:" in only_py.text
    in_dir = tools.call("search_text", {"pattern": "add_total", "path": "/workspace/pkg/notes.md"})
    assert in_dir.text.strip().endswith("add_total is documented here")

    none = tools.call("search_text", {"pattern": "no_such_symbol"})
    assert none.ok and none.text.startswith("no matches for 'no_such_symbol'")
    bad = tools.call("search_text", {"pattern": "def ("})
    assert not bad.ok and bad.text.startswith("search failed:")


def test_search_text_bounds_matches(tools: Toolset, workspace: Path) -> None:
    (workspace / "many.txt").write_text("needle\n" * 500)
    limited = Toolset(tools.sandbox, limits=ToolLimits(search_max_matches=20))
    obs = limited.call("search_text", {"pattern": "needle", "path": "many.txt"})
    assert len(obs.text.splitlines()) == 21
    assert "[480 more matches not shown" in obs.text


class _WithoutRipgrep:
    """A sandbox whose PATH has no rg, to exercise the grep fallback."""

    def __init__(self, inner: Sandbox, bin_dir: Path):
        self.inner, self.spec, self.bin_dir = inner, inner.spec, bin_dir

    def exec(self, cmd: str | list[str], timeout: float | None = None, **kwargs: object) -> ExecResult:
        return self.inner.exec(cmd, timeout=timeout, env={"PATH": str(self.bin_dir)})


def test_search_text_falls_back_to_grep(workspace: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "grep"):
        found = shutil.which(tool)
        assert found
        os.symlink(found, bin_dir / tool)
    box = _start("local", workspace)
    try:
        tools = Toolset(_WithoutRipgrep(box, bin_dir))  # type: ignore[arg-type]
        obs = tools.call("search_text", {"pattern": r"def [a-z]+_total", "glob": "*.py"})
    finally:
        box.stop()
    assert obs.ok
    assert obs.text.splitlines() == ["pkg/cart.py:1:def add_total(a, b):", "pkg/cart.py:5:def sub_total(a, b):"]


# --- edit_file and create_file


def test_edit_file_success_returns_snippet(tools: Toolset, workspace: Path) -> None:
    obs = tools.call(
        "edit_file", {"path": "pkg/cart.py", "old": "    return a - b\n", "new": "    # difference\n    return a - b\n"}
    )
    assert obs.ok, obs.text
    assert "     6\t    # difference" in obs.text and "     7\t    return a - b" in obs.text
    assert "     3\t" in obs.text and "    11\t" not in obs.text
    assert (workspace / "pkg" / "cart.py").read_text() == PY_SOURCE.replace(
        "    return a - b\n", "    # difference\n    return a - b\n"
    )


def test_edit_file_missing_and_not_unique(tools: Toolset, workspace: Path) -> None:
    missing = tools.call("edit_file", {"path": "pkg/cart.py", "old": "return a * b", "new": "x"})
    assert not missing.ok
    assert missing.text == "old text not found in pkg/cart.py; view the file and copy the exact text"

    twice = tools.call("edit_file", {"path": "pkg/cart.py", "old": "(a, b):", "new": "(a, b=0):"})
    assert not twice.ok
    assert twice.text == "old text found 2 times in pkg/cart.py; include more surrounding lines to make it unique"
    assert (workspace / "pkg" / "cart.py").read_text() == PY_SOURCE


def test_edit_file_keeps_crlf_and_foreign_bytes(tools: Toolset, workspace: Path) -> None:
    (workspace / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    assert tools.call("edit_file", {"path": "win.txt", "old": "one\ntwo", "new": "one\n2"}).ok
    assert (workspace / "win.txt").read_bytes() == b"one\r\n2\r\nthree\r\n"

    (workspace / "latin1.txt").write_bytes(b"caf\xe9 = 1\nvalue = 2\n")
    assert tools.call("edit_file", {"path": "latin1.txt", "old": "value = 2", "new": "value = 3"}).ok
    assert (workspace / "latin1.txt").read_bytes() == b"caf\xe9 = 1\nvalue = 3\n"


def test_create_file_creates_and_overwrites(tools: Toolset, workspace: Path) -> None:
    obs = tools.call("create_file", {"path": "src/new/mod.py", "content": "a = 1\nb = 2\n"})
    assert obs.ok and obs.text == "Created src/new/mod.py (2 lines)."
    assert (workspace / "src" / "new" / "mod.py").read_text() == "a = 1\nb = 2\n"
    again = tools.call("create_file", {"path": "src/new/mod.py", "content": "a = 3\n"})
    assert again.text == "Overwrote src/new/mod.py (1 lines)."
    assert (workspace / "src" / "new" / "mod.py").read_text() == "a = 3\n"


# --- run_command


def test_run_command_exit_code_and_output(tools: Toolset, workspace: Path) -> None:
    obs = tools.call("run_command", {"command": "ls pkg; echo oops >&2; exit 3"})
    assert obs.ok
    assert obs.text.startswith("exit code 3 (")
    assert "cart.py" in obs.text and "oops" in obs.text
    quiet = tools.call("run_command", {"command": "true"})
    assert quiet.text.endswith("\n(no output)")


def test_run_command_timeout_is_said(tools: Toolset) -> None:
    obs = tools.call("run_command", {"command": "echo started; sleep 20", "timeout": 1})
    assert obs.text.startswith("timed out after 1 s")


def test_output_is_bounded_head_and_tail(tools: Toolset) -> None:
    limited = Toolset(tools.sandbox, limits=ToolLimits(max_output_chars=2_000))
    obs = limited.call("run_command", {"command": "seq 1 100000"})
    assert obs.truncated
    assert len(obs.text) < 2_100
    assert obs.text.startswith("exit code 0")
    assert "characters omitted" in obs.text
    assert obs.text.rstrip().endswith("100000")


# --- the registry


def test_unknown_tool_lists_available(tools: Toolset) -> None:
    reviewer = Toolset(tools.sandbox, READ_ONLY_TOOLS)
    obs = reviewer.call("edit_file", {"path": "a", "old": "b", "new": "c"})
    assert not obs.ok
    assert obs.text == "unknown tool 'edit_file'; available: view_file, list_files, search_text, submit"


def test_malformed_json_arguments(tools: Toolset) -> None:
    obs = tools.call("view_file", '{"path": "pkg/cart.py",')
    assert not obs.ok
    assert obs.text.startswith("arguments are not valid JSON (")
    assert "expected a JSON object with path, start_line (optional), end_line (optional)" in obs.text
    listed = tools.call("view_file", '["pkg/cart.py"]')
    assert "arguments are not a JSON object but an array" in listed.text


def test_validation_errors_are_one_short_message(tools: Toolset) -> None:
    obs = tools.call("edit_file", {"file": "pkg/cart.py", "old": "x"})
    assert not obs.ok
    assert obs.text.startswith("invalid arguments for edit_file: ")
    assert "path: Field required" in obs.text and "file: Extra inputs are not permitted" in obs.text
    assert "\n" not in obs.text
    typed = tools.call("view_file", {"path": "pkg/cart.py", "start_line": "first"})
    assert "start_line: Input should be a valid integer" in typed.text
    assert not tools.call("submit", "").ok


def test_symlinks_out_of_the_workspace_are_refused(tools: Toolset, workspace: Path) -> None:
    (workspace / "passwd").symlink_to("/etc/passwd")
    (workspace / "etc").symlink_to("/etc")
    for name, args in [
        ("view_file", {"path": "passwd"}),
        ("view_file", {"path": "etc/hostname"}),
        ("view_file", {"path": "/etc/passwd"}),
        ("view_file", {"path": "../../etc/passwd"}),
        ("edit_file", {"path": "passwd", "old": "root", "new": "toor"}),
        ("create_file", {"path": "etc/evil", "content": "x"}),
        ("search_text", {"pattern": "root", "path": "passwd"}),
        ("list_files", {"path": "etc"}),
    ]:
        obs = tools.call(name, args)
        assert not obs.ok, (name, args, obs.text)
        assert "workspace" in obs.text and "root:" not in obs.text
    assert not Path("/etc/evil").exists()


def test_submit_ends_the_work(tools: Toolset) -> None:
    obs = tools.call("submit", {"summary": "fixed the total"})
    assert obs.ok and obs.done
    assert obs.text == "fixed the total"
    assert obs.arguments == {"summary": "fixed the total", "no_change_needed": False}
    said = tools.call("submit", {"summary": "it already does", "no_change_needed": True})
    assert said.done and said.arguments == {"summary": "it already does", "no_change_needed": True}


class Verdict(BaseModel):
    verdict: str
    comments: list[str] = []


def test_extra_tools_replace_built_ins_and_bugs_do_not_raise(tools: Toolset) -> None:
    def review(sandbox: Sandbox, args: Verdict, limits: ToolLimits) -> str:
        return f"{args.verdict}: {len(args.comments)} comments"

    def broken(sandbox: Sandbox, args: Verdict, limits: ToolLimits) -> str:
        raise KeyError("boom")

    reviewer = Toolset(
        tools.sandbox,
        ["view_file", "search_text"],
        extra=[
            Tool("submit", "Give your verdict.", Verdict, review, read_only=True, ends_work=True),
            Tool("broken", "Fails.", Verdict, broken, read_only=True),
        ],
    )
    assert reviewer.names == ["view_file", "search_text", "submit", "broken"]
    obs = reviewer.call("submit", {"verdict": "approve", "comments": ["nice"]})
    assert obs.done and obs.text == "approve: 1 comments"
    failed = reviewer.call("broken", {"verdict": "x"})
    assert not failed.ok and failed.text == "internal error in broken: KeyError: 'boom'"
    with pytest.raises(ValueError, match="unknown tools"):
        Toolset(tools.sandbox, ["view_file", "delete_everything"])


def test_schemas_are_openai_function_tools(tools: Toolset) -> None:
    from langchain_openai import ChatOpenAI

    schemas = tools.schemas()
    assert [s["function"]["name"] for s in schemas] == list(ALL_TOOLS)
    edit = next(s for s in schemas if s["function"]["name"] == "edit_file")
    assert edit["type"] == "function"
    params = edit["function"]["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["path", "old", "new"]
    assert params["additionalProperties"] is False
    assert "title" not in json.dumps(params)
    view = next(s for s in schemas if s["function"]["name"] == "view_file")["function"]["parameters"]
    # Optional arguments are plain types, not anyOf-with-null.
    assert view["properties"]["start_line"] == {
        "type": "integer",
        "minimum": 1,
        "description": "first line to show (1-based)",
    }

    model = ChatOpenAI(model="scripted", api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    bound = model.bind_tools(schemas)
    assert bound.kwargs["tools"] == schemas  # type: ignore[attr-defined]
