"""The tools agents use on their sandbox: view, list, search, edit and create files, run commands, submit.

Each tool is a pydantic arguments model plus a function `(sandbox, args, limits) -> str`.
A `Toolset` binds a subset of them to one sandbox, gives the model their schemas and
runs the calls it makes, turning every failure into an observation the model can read
and act on: a tool call never raises into the agent loop.

Schemas are plain OpenAI function-calling dicts (`{"type": "function", "function":
{...}}`): `ChatOpenAI.bind_tools` passes them through unchanged, the raw `openai`
client takes the same list, and the sandbox stays out of the schema (a langchain
`StructuredTool` would need one closure per sandbox and raise on bad arguments).

File tools go through the sandbox's read_file/write_file/list_files, which are confined
to the workspace and refuse symlinks leading out of it.
"""

from __future__ import annotations

import copy
import fnmatch
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.validation import json_object, problems
from sandboxes.base import Sandbox, SandboxError, cap_output
from sandboxes.files import WorkspaceFiles


class ToolError(Exception):
    """A tool could not do what was asked; the message tells the model what to do instead."""


class ToolLimits(BaseModel):
    """How much one observation may hold: a model's context is the scarce resource."""

    max_output_chars: int = Field(20_000, ge=500, description="characters of any one observation")
    view_max_lines: int = Field(400, ge=10, description="lines view_file shows at once")
    line_max_chars: int = Field(500, ge=80, description="characters shown of one long line")
    list_max_entries: int = Field(300, ge=10, description="paths list_files shows")
    search_max_matches: int = Field(200, ge=10, description="matching lines search_text shows")
    search_timeout: float = Field(60.0, gt=0, description="seconds one search may run")
    snippet_context: int = Field(3, ge=0, description="lines around an edit shown after it")


class ToolObservation(BaseModel):
    """What a tool call produced, as the model will read it."""

    name: str
    text: str
    ok: bool = Field(True, description="the call did what was asked; a command's own exit code is in `text`")
    done: bool = Field(False, description="the tool ends the agent's work (submit)")
    truncated: bool = False
    arguments: dict[str, Any] | None = Field(None, description="the validated arguments, when they were valid")


class _Args(BaseModel):
    # Unknown fields are refused so that a misnamed argument ("file" for "path") is
    # reported instead of silently ignored.
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------
# Arguments


class ViewFileArgs(_Args):
    path: str = Field(description="file path, relative to the workspace root")
    start_line: int | None = Field(None, ge=1, description="first line to show (1-based)")
    end_line: int | None = Field(None, ge=1, description="last line to show, inclusive")


class ListFilesArgs(_Args):
    path: str = Field(".", description="directory to list, relative to the workspace root")
    pattern: str | None = Field(None, description="glob on the path or file name, e.g. '*.py' or 'src/**/*.ts'")


class SearchTextArgs(_Args):
    pattern: str = Field(min_length=1, description="regular expression to search for")
    path: str = Field(".", description="file or directory to search in")
    glob: str | None = Field(None, description="only files whose name matches this glob, e.g. '*.py'")


class EditFileArgs(_Args):
    path: str = Field(description="file to edit")
    old: str = Field(min_length=1, description="exact text to replace, including whitespace; must occur exactly once")
    new: str = Field(description="replacement text")


class CreateFileArgs(_Args):
    path: str = Field(description="file to create or overwrite; parent directories are created")
    content: str = Field(description="the whole content of the file")


class RunCommandArgs(_Args):
    command: str = Field(min_length=1, description="shell command, run from the workspace root")
    timeout: float | None = Field(None, gt=0, le=3600, description="seconds before the command is killed")


class SubmitArgs(_Args):
    summary: str = Field(min_length=1, description="what you did and why, for the reviewer and the director")
    no_change_needed: bool = Field(False, description="true only if you changed nothing because the work is "
                                   "already done; the summary must say why, and a reviewer checks it")


# ---------------------------------------------------------------------------
# Tool functions


def view_file(sandbox: Sandbox, args: ViewFileArgs, limits: ToolLimits) -> str:
    data = sandbox.read_file(args.path)
    if _is_binary(data):
        raise ToolError(f"{args.path} is a binary file ({len(data)} bytes); it cannot be shown as text")
    notes = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        notes.append(f"{args.path} is not valid UTF-8; undecodable bytes are shown as \ufffd")
    lines = _split_lines(text)
    if not lines:
        return f"{args.path} is empty."
    total = len(lines)
    start = args.start_line or 1
    if start > total:
        raise ToolError(f"{args.path} has {total} lines; start_line {start} is past the end")
    end = min(args.end_line or total, total)
    if end < start:
        raise ToolError(f"end_line {args.end_line} is before start_line {start}")
    if end - start + 1 > limits.view_max_lines:
        end = start + limits.view_max_lines - 1
    body = _numbered(lines[start - 1 : end], start, limits.line_max_chars)
    if (start, end) != (1, total):
        notes.append(
            f"showing lines {start}-{end} of {total}; call view_file with start_line and end_line to see other lines"
        )
    return body + "".join(f"\n[{note}]" for note in notes)


def list_files(sandbox: Sandbox, args: ListFilesArgs, limits: ToolLimits) -> str:
    paths = sandbox.list_files(args.path)
    if args.pattern:
        paths = [p for p in paths if _glob_match(p, args.pattern)]
    if not paths:
        return f"no files below {args.path}" + (f" match {args.pattern!r}" if args.pattern else "")
    shown = paths[: limits.list_max_entries]
    text = "\n".join(shown)
    if len(paths) > len(shown):
        text += f"\n[{len(paths) - len(shown)} more not shown; narrow with path or pattern]"
    return text


def search_text(sandbox: Sandbox, args: SearchTextArgs, limits: ToolLimits) -> str:
    target = _workspace_relative(sandbox, args.path)
    result = sandbox.exec(["sh", "-c", _search_script(args.pattern, target, args.glob)], timeout=limits.search_timeout)
    if result.timed_out:
        raise ToolError(f"search timed out after {limits.search_timeout:g} s; search a smaller path or use a glob")
    # rg and grep agree: 0 found, 1 nothing found, 2 an error such as a bad regex.
    if result.exit_code == 1 and not result.stdout.strip():
        return f"no matches for {args.pattern!r} in {args.path}" + (f" ({args.glob})" if args.glob else "")
    if result.exit_code not in (0, 1):
        raise ToolError(f"search failed: {(result.stderr or result.stdout).strip()}")
    matches = [_clip(line.removeprefix("./"), limits.line_max_chars) for line in result.stdout.splitlines()]
    shown = matches[: limits.search_max_matches]
    text = "\n".join(shown)
    if len(matches) > len(shown):
        text += f"\n[{len(matches) - len(shown)} more matches not shown; narrow the pattern, path or glob]"
    elif result.truncated:
        text += "\n[more matches not shown; narrow the pattern, path or glob]"
    return text


def edit_file(sandbox: Sandbox, args: EditFileArgs, limits: ToolLimits) -> str:
    data = sandbox.read_file(args.path)
    if _is_binary(data):
        raise ToolError(f"{args.path} is a binary file; edit_file only changes text")
    # surrogateescape round-trips bytes that are not UTF-8, so editing a Latin-1 file
    # leaves the rest of it byte for byte as it was.
    text = data.decode("utf-8", errors="surrogateescape")
    old, new = args.old, args.new
    if text.count(old) == 0 and "\r\n" in text:
        # Models write "\n"; files from Windows have "\r\n".
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
    count = text.count(old)
    if count == 0:
        raise ToolError(f"old text not found in {args.path}; view the file and copy the exact text")
    if count > 1:
        raise ToolError(
            f"old text found {count} times in {args.path}; include more surrounding lines to make it unique"
        )
    if old == new:
        raise ToolError("old and new are the same; nothing to change")
    at = text.index(old)
    edited = text[:at] + new + text[at + len(old) :]
    sandbox.write_file(args.path, edited.encode("utf-8", errors="surrogateescape"))
    first = text.count("\n", 0, at) + 1
    last = first + new.rstrip("\r\n").count("\n")
    return f"Edited {args.path}. Lines around the change:\n" + _snippet(edited, first, last, limits)


def create_file(sandbox: Sandbox, args: CreateFileArgs, limits: ToolLimits) -> str:
    try:
        sandbox.read_file(args.path)
        verb = "Overwrote"
    except SandboxError:
        verb = "Created"
    sandbox.write_file(args.path, args.content)
    return f"{verb} {args.path} ({len(_split_lines(args.content))} lines)."


def run_command(sandbox: Sandbox, args: RunCommandArgs, limits: ToolLimits) -> str:
    result = sandbox.exec(args.command, timeout=args.timeout)
    if result.timed_out:
        timeout = args.timeout or sandbox.spec.limits.exec_timeout
        head = f"timed out after {timeout:g} s (the command was killed); output so far:"
    else:
        head = f"exit code {result.exit_code} ({result.duration:.1f} s)"
        if result.exit_code == 137 and "[shipyard: " not in result.stderr:
            # SIGKILL from no one but the kernel: the OOM killer, at the sandbox's memory limit.
            head += (f"; killed (SIGKILL), most likely for using more than the sandbox's "
                     f"{sandbox.spec.limits.memory_mb} MB of memory")
    return f"{head}\n{result.output.rstrip() or '(no output)'}"


def submit(sandbox: Sandbox, args: SubmitArgs, limits: ToolLimits) -> str:
    return args.summary


# ---------------------------------------------------------------------------
# Helpers


def valid_text(text: str) -> str:
    """`text` as valid Unicode: bytes that were not UTF-8 (file names, decoded with
    surrogateescape) become U+FFFD, so that the text can go into JSON, to the model and the log."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape" if _only_escapes(text) else "replace").decode("utf-8", "replace")


def _only_escapes(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _is_binary(data: bytes) -> bool:
    # The heuristic git and grep use: text files have no NUL bytes.
    return b"\0" in data[:8192]


def _split_lines(text: str) -> list[str]:
    # Split on "\n" only, like grep and editors count lines (str.splitlines also splits
    # on form feeds and Unicode separators, which would shift line numbers).
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _clip(line: str, limit: int) -> str:
    return line if len(line) <= limit else f"{line[:limit]}… [{len(line) - limit} more characters]"


def _numbered(lines: list[str], first: int, line_limit: int) -> str:
    return "\n".join(f"{n:6}\t{_clip(line, line_limit)}" for n, line in enumerate(lines, first))


def _snippet(text: str, first: int, last: int, limits: ToolLimits) -> str:
    lines = _split_lines(text)
    if not lines:
        return "(the file is now empty)"
    start = max(1, first - limits.snippet_context)
    end = min(len(lines), last + limits.snippet_context, start + limits.view_max_lines - 1)
    return _numbered(lines[start - 1 : end], start, limits.line_max_chars)


def _glob_match(path: str, pattern: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(name, pattern):
        return True
    # fnmatch needs a "/" for "**/", but "**/x.py" should also match a top-level x.py.
    return pattern.startswith("**/") and fnmatch.fnmatch(path, pattern[3:])


def _workspace_relative(sandbox: Sandbox, path: str) -> str:
    """`path` relative to the workspace root, refused if it leads out (as the file tools are)."""
    files = WorkspaceFiles(sandbox.spec.workspace)
    host = files.resolve(path)
    if not host.exists():
        raise ToolError(f"{path}: no such file or directory in the workspace")
    return str(host.relative_to(files.root))


def _search_script(pattern: str, target: str, glob: str | None) -> str:
    """A shell script searching with ripgrep when the sandbox has it, else grep."""
    # The path is always given: without one, rg may read stdin instead of the directory.
    rg = f"rg --line-number --no-heading --with-filename --color never -e {shlex.quote(pattern)}"
    grep = f"grep -rnHIE --exclude-dir=.git --exclude-dir=node_modules -e {shlex.quote(pattern)}"
    if glob:
        rg += f" --glob {shlex.quote(glob)}"
        grep += f" --include={shlex.quote(glob)}"
    where = f" -- {shlex.quote(target)}"
    return f"if command -v rg >/dev/null 2>&1; then {rg}{where}; else {grep}{where}; fi"


# ---------------------------------------------------------------------------
# Registry


ToolFunction = Callable[[Sandbox, Any, ToolLimits], str]


@dataclass(frozen=True)
class Tool:
    """One tool: its name and description for the model, its arguments, and what it does."""

    name: str
    description: str
    args_model: type[BaseModel]
    run: ToolFunction
    read_only: bool
    ends_work: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema of this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters(),
            },
        }

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments."""
        return copy.deepcopy(_parameters(self.args_model))  # a copy: the caller may change it


# Every model call sends its tools' schemas, and pydantic builds a model's JSON schema anew each time it is
# asked (milliseconds a tool); a model class's schema never changes.
@lru_cache(maxsize=256)
def _parameters(args_model: type[BaseModel]) -> dict[str, Any]:
    return compact_schema(args_model.model_json_schema())


def compact_schema(schema: Any) -> Any:
    """pydantic's JSON schema, trimmed of what costs a model tokens and tells it nothing.

    Titles repeat the names. An optional field's `anyOf: [T, null]` with `default: null`
    becomes plain T (still optional, as it is not required): small models and the
    constrained decoders of local servers handle it far better.
    """
    if isinstance(schema, list):
        return [compact_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    variants = schema.get("anyOf")
    if schema.get("default", ...) is None and isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        if len(rest) == 1:
            others = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            schema = {**rest[0], **others}
    # A property *named* title maps to a dict, so only string titles are dropped.
    return {k: compact_schema(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "view_file",
            "Show a text file with line numbers. Long files are shown in parts: "
            "pass start_line and end_line to see a range.",
            ViewFileArgs,
            view_file,
            read_only=True,
        ),
        Tool(
            "list_files",
            "List the files below a directory of the workspace (recursively), optionally filtered by a glob.",
            ListFilesArgs,
            list_files,
            read_only=True,
        ),
        Tool(
            "search_text",
            "Search file contents for a regular expression (ripgrep syntax); prints file:line:text for each "
            "match. Files ignored by git are skipped.",
            SearchTextArgs,
            search_text,
            read_only=True,
        ),
        Tool(
            "edit_file",
            "Replace one exact occurrence of `old` with `new` in a file. `old` must match the file exactly, "
            "whitespace included, and occur once: include enough surrounding lines to make it unique.",
            EditFileArgs,
            edit_file,
            read_only=False,
        ),
        Tool(
            "create_file",
            "Create a file with the given content, or overwrite it entirely. "
            "Prefer edit_file for changes to an existing file.",
            CreateFileArgs,
            create_file,
            read_only=False,
        ),
        Tool(
            "run_command",
            "Run a non-interactive shell command from the workspace root and get its exit code and output. "
            "Each call starts a fresh shell: `cd` does not carry over.",
            RunCommandArgs,
            run_command,
            read_only=False,
        ),
        Tool(
            "submit",
            "Finish your work: call this once, when you are done, with a summary of what you did.",
            SubmitArgs,
            submit,
            read_only=True,
            ends_work=True,
        ),
    )
}

ALL_TOOLS: tuple[str, ...] = tuple(TOOLS)
READ_ONLY_TOOLS: tuple[str, ...] = tuple(name for name, tool in TOOLS.items() if tool.read_only)


class Toolset:
    """Tools bound to one sandbox: their schemas for the model, and calls that never raise."""

    def __init__(
        self,
        sandbox: Sandbox,
        names: Iterable[str] = ALL_TOOLS,
        limits: ToolLimits | None = None,
        extra: Iterable[Tool] = (),
        write_check: Callable[[str], str | None] | None = None,
    ):
        """`names` picks built-in tools; `extra` adds or replaces tools (e.g. a reviewer's verdict submit)."""
        unknown = [name for name in names if name not in TOOLS]
        if unknown:
            raise ValueError(f"unknown tools {unknown}; built-in tools are {', '.join(TOOLS)}")
        self.sandbox = sandbox
        self.limits = limits or ToolLimits()
        self.tools: dict[str, Tool] = {name: TOOLS[name] for name in names}
        self.tools.update({tool.name: tool for tool in extra})
        # Why a path must not be written (e.g. git would never commit it); None: it may be.
        self.write_check = write_check

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI function-calling schemas, for `ChatOpenAI.bind_tools` or the `tools` request field."""
        return [tool.schema() for tool in self.tools.values()]

    def call(self, name: str, raw_arguments: str | dict[str, Any] | None) -> ToolObservation:
        """Run tool `name` with the model's arguments (a JSON string or an already parsed dict)."""
        tool = self.tools.get(name)
        if tool is None:
            return self._failed(name, f"unknown tool {name!r}; available: {', '.join(self.tools)}")
        try:
            args = tool.args_model.model_validate(_parse_arguments(raw_arguments))
        except ToolError as exc:
            return self._failed(name, f"{exc}; expected {_fields(tool)}")
        except ValidationError as exc:
            return self._failed(name, f"invalid arguments for {name}: {problems(exc, 'arguments', most=3)}")
        arguments = args.model_dump()
        refusal = self._refusal(tool, arguments)
        if refusal:
            return self._failed(name, refusal)
        try:
            text, ok = tool.run(self.sandbox, args, self.limits), True
        except (ToolError, SandboxError) as exc:
            text, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - a bug in one tool must not end an agent's run
            text, ok = f"internal error in {name}: {type(exc).__name__}: {exc}", False
        bounded, truncated = cap_output(valid_text(text), self.limits.max_output_chars)
        return ToolObservation(
            name=name,
            text=bounded,
            ok=ok,
            done=tool.ends_work and ok,
            truncated=truncated,
            arguments=arguments,
        )

    def _refusal(self, tool: Tool, arguments: dict[str, Any]) -> str | None:
        path = arguments.get("path")
        if tool.read_only or self.write_check is None or not isinstance(path, str):
            return None
        return self.write_check(path)

    def _failed(self, name: str, text: str) -> ToolObservation:
        bounded, truncated = cap_output(valid_text(text), self.limits.max_output_chars)
        return ToolObservation(name=name, text=bounded, ok=False, truncated=truncated)


def _parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not raw.strip():
        # Some models send "" for a tool without required arguments.
        return {}
    try:
        return json_object(raw)
    except ValueError as exc:
        raise ToolError(f"arguments are {exc}; send one JSON object of the tool's parameters") from None


def _fields(tool: Tool) -> str:
    fields = tool.args_model.model_fields
    return "a JSON object with " + ", ".join(
        f"{name}{'' if field.is_required() else ' (optional)'}" for name, field in fields.items()
    )
