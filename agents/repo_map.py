"""A compact map of a repository's symbols, for the planner, built with tree-sitter as Aider does.

    agents/tools.py:
      class Toolset:
        def call(self, name: str, raw_arguments: str | dict | None) -> ToolObservation:
    src/app.ts:
      export class App

Definitions come from tree-sitter queries written here for Python, JavaScript,
TypeScript/TSX, Go and Rust; files in other languages appear as a bare path.

Ranking, kept simple: a definition scores the number of *other* files that mention its
name (a plain identifier scan, like Aider's fallback when a grammar has no reference
tags); a file scores the sum of its definitions. Files the rest of the repo leans on
come first, and the map is cut to a character budget (about 4 characters a token),
listing what did not fit as paths while they fit and then counting the rest.

Grammars come from the per-language wheels (tree-sitter-python, -javascript,
-typescript, -go, -rust), which carry their compiled parsers; tree-sitter-language-pack
1.x is used only for a grammar already in its cache, since it otherwise downloads
grammars at run time and the planner must not need the network.

Files are read through the sandbox's file API, confined to the workspace as every agent is:
no symlink out of it, nothing vendored, binary or huge, and a cap on files parsed.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

from tree_sitter import Language, Node, Parser, Query, QueryCursor

from agents.repo_files import list_tree
from agents.tools import valid_text
from sandboxes.base import SandboxError, WorkspaceReader

# File suffix -> grammar name.
LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
}

# Where each grammar's wheel keeps it: module and function returning the language pointer.
_GRAMMAR_MODULES: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
}

# Captures: @name is the symbol, @body where the signature ends, and @definition.function
# or @definition.type the whole definition. Definitions nested in a function are locals
# and left out; those nested in a type (methods) are kept, indented.
_JS_COMMON = """
(function_declaration name: (identifier) @name body: (_) @body) @definition.function
(generator_function_declaration name: (identifier) @name body: (_) @body) @definition.function
(method_definition name: (property_identifier) @name body: (_) @body) @definition.function
(lexical_declaration
  (variable_declarator name: (identifier) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])) @definition.function
"""

_TS_COMMON = (
    _JS_COMMON
    + """
(class_declaration name: (type_identifier) @name body: (_) @body) @definition.type
(abstract_class_declaration name: (type_identifier) @name body: (_) @body) @definition.type
(interface_declaration name: (type_identifier) @name body: (_) @body) @definition.type
(enum_declaration name: (identifier) @name body: (_) @body) @definition.type
(type_alias_declaration name: (type_identifier) @name) @definition.type
(method_signature name: (property_identifier) @name) @definition.function
(abstract_method_signature name: (property_identifier) @name) @definition.function
"""
)

QUERIES: dict[str, str] = {
    "python": """
(class_definition name: (identifier) @name body: (_) @body) @definition.type
(function_definition name: (identifier) @name body: (_) @body) @definition.function
""",
    "javascript": _JS_COMMON
    + """
(class_declaration name: (identifier) @name body: (_) @body) @definition.type
""",
    "typescript": _TS_COMMON,
    "tsx": _TS_COMMON,
    "go": """
(function_declaration name: (identifier) @name body: (_) @body) @definition.function
(method_declaration name: (field_identifier) @name body: (_) @body) @definition.function
(type_spec name: (type_identifier) @name) @definition.type
""",
    "rust": """
(struct_item name: (type_identifier) @name) @definition.type
(enum_item name: (type_identifier) @name body: (_) @body) @definition.type
(union_item name: (type_identifier) @name body: (_) @body) @definition.type
(trait_item name: (type_identifier) @name body: (_) @body) @definition.type
(impl_item
  type: [(type_identifier) @name (generic_type type: (type_identifier) @name)] body: (_) @body) @definition.type
(mod_item name: (identifier) @name body: (_) @body) @definition.type
(type_item name: (type_identifier) @name) @definition.type
(macro_definition name: (identifier) @name) @definition.function
(function_item name: (identifier) @name body: (_) @body) @definition.function
(function_signature_item name: (identifier) @name) @definition.function
""",
}

# Directories of code a project ships but did not write, or that its build produced.
VENDORED_DIRS = {
    "vendor", "third_party", "third-party", "external", "site-packages", "venv", "env",
    "dist", "build", "target", "out", "coverage", ".next", ".nuxt", "bower_components",
}  # fmt: skip
GENERATED_SUFFIXES = (".min.js", ".min.mjs", ".bundle.js", ".d.ts", "_pb2.py", ".pb.go")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIGNATURE_CHARS = 160
_OPEN_PAREN = re.compile(r"\(\s+")
_CLOSE_PAREN = re.compile(r",?\s+\)")


@dataclass(frozen=True)
class Definition:
    name: str
    line: int  # 1-based
    depth: int  # how many enclosing definitions (a method in a class: 1)
    signature: str  # the definition's head, e.g. "def run(self, task: str) -> Result:"


@dataclass
class _File:
    path: str
    definitions: list[Definition]
    score: int = 0


def build_repo_map(
    files: WorkspaceReader,
    max_chars: int = 8_000,
    max_files: int = 2_000,
    max_file_bytes: int = 256_000,
) -> str:
    """The repo map of the workspace `files` reads, at most `max_chars` characters."""
    paths = _candidate_paths(files)
    parsed: list[_File] = []
    mentions: Counter[str] = Counter()  # identifier -> number of files mentioning it
    tried = 0
    for path in paths:
        if len(parsed) >= max_files:
            break
        tried += 1
        try:
            source = _read_source(files, path, max_file_bytes)
        except (SandboxError, OSError, _TooLarge):
            continue  # a link out of the workspace, a generated-sized file, or one gone meanwhile
        language = LANGUAGES.get(PurePosixPath(path).suffix)
        if source is None or language is None:
            parsed.append(_File(path, []))
            continue
        parsed.append(_File(path, extract_definitions(source, language)))
        mentions.update(set(_IDENTIFIER.findall(source.decode("utf-8", "replace"))))
    for file in parsed:
        file.score = sum(_definition_score(d, mentions) for d in file.definitions)
    ranked = sorted(parsed, key=lambda f: (-f.score, f.path))
    unread = len(paths) - tried
    return valid_text(_render(ranked, mentions, max_chars, unread))  # paths need not be UTF-8


def extract_definitions(source: bytes, language: str) -> list[Definition]:
    """Definitions in `source`, in source order; [] when the grammar is not installed."""
    grammar = _language(language)
    if grammar is None:
        return []
    tree = _parser(language).parse(source)
    found: list[tuple[Node, str, str, Node | None]] = []
    for _, captures in QueryCursor(_query(language)).matches(tree.root_node):
        kind = next(k for k in captures if k.startswith("definition."))
        node = captures[kind][0]
        name = captures["name"][0].text or b""
        body = captures.get("body", [None])[0]
        found.append((node, kind, name.decode("utf-8", "replace"), body))
    found.sort(key=lambda f: (f[0].start_byte, -f[0].end_byte))
    return _nest(found, source)


def _nest(found: list[tuple[Node, str, str, Node | None]], source: bytes) -> list[Definition]:
    definitions: list[Definition] = []
    enclosing: list[tuple[Node, str]] = []  # open definitions containing the current one
    for node, kind, name, body in found:
        while enclosing and enclosing[-1][0].end_byte <= node.start_byte:
            enclosing.pop()
        if not any(k == "definition.function" for _, k in enclosing):
            definitions.append(
                Definition(name, node.start_point[0] + 1, len(enclosing), _signature(node, body, source))
            )
        enclosing.append((node, kind))
    return definitions


def _signature(node: Node, body: Node | None, source: bytes) -> str:
    """The definition's text up to its body, on one line; without a body, its first line."""
    end = _head_end(body) if body is not None else node.end_byte
    head = source[node.start_byte : end].decode("utf-8", "replace")
    if body is None:
        head = head.split("\n", 1)[0]
    head = " ".join(head.split()).rstrip(" {")
    # Parameters spread over lines read "f( a, b, )" once joined.
    head = _CLOSE_PAREN.sub(")", _OPEN_PAREN.sub("(", head))
    return head if len(head) <= _SIGNATURE_CHARS else head[: _SIGNATURE_CHARS - 1] + "…"


def _head_end(body: Node) -> int:
    """Where the text before `body` ends, leaving out comments between the head and the body."""
    before = body.prev_sibling
    while before is not None and "comment" in before.type:
        before = before.prev_sibling
    return before.end_byte if before is not None else body.start_byte


def _definition_score(definition: Definition, mentions: Counter[str]) -> int:
    # Dunder names (__init__, __str__) are mentioned everywhere and say nothing about
    # which file matters; a definition's own file always mentions it, hence the -1.
    if definition.name.startswith("__") and definition.name.endswith("__"):
        return 0
    return max(0, mentions[definition.name] - 1)


def _render(ranked: list[_File], mentions: Counter[str], max_chars: int, unread: int) -> str:
    # Room is kept for the closing "[N more files not shown]" line.
    budget = max_chars - 48
    blocks: list[str] = []
    used = 0
    shown = 0
    for file in ranked:
        block = _block(file, mentions, budget - used)
        if block is None:
            break
        blocks.append(block)
        used += len(block) + 1
        shown += 1
    remaining = len(ranked) - shown + unread
    if remaining:
        blocks.append(f"[{remaining} more files not shown]")
    return "\n".join(blocks)


def _block(file: _File, mentions: Counter[str], room: int) -> str | None:
    """`file`'s lines within `room` characters: all its definitions, the best ones, or its path."""
    header = f"{file.path}:" if file.definitions else file.path
    if len(header) > room:
        return None
    lines = [f"{'  ' * (d.depth + 1)}{d.signature}" for d in file.definitions]
    full = "\n".join([header, *lines])
    if len(full) <= room:
        return full
    # Keep the most referenced definitions that fit, each with the class (or impl, ...)
    # it belongs to, shown in source order.
    order = sorted(range(len(lines)), key=lambda i: -_definition_score(file.definitions[i], mentions))
    parents = _parents(file.definitions)
    elision = "  ⋮ {} more"
    kept: set[int] = set()
    size = len(header) + len(elision) + 8
    for i in order:
        chain = [j for j in _with_ancestors(i, parents) if j not in kept]
        cost = sum(len(lines[j]) + 1 for j in chain)
        if size + cost <= room:
            kept.update(chain)
            size += cost
    if not kept:
        return file.path
    body = [lines[i] for i in sorted(kept)]
    return "\n".join([header, *body, elision.format(len(lines) - len(kept))])


def _parents(definitions: list[Definition]) -> list[int | None]:
    """For each definition, the index of the one it is nested in."""
    parents: list[int | None] = []
    open_at_depth: list[int] = []
    for i, definition in enumerate(definitions):
        del open_at_depth[definition.depth :]
        parents.append(open_at_depth[-1] if open_at_depth else None)
        open_at_depth.append(i)
    return parents


def _with_ancestors(index: int, parents: list[int | None]) -> list[int]:
    chain = []
    current: int | None = index
    while current is not None:
        chain.append(current)
        current = parents[current]
    return chain


def _candidate_paths(files: WorkspaceReader) -> list[str]:
    """Files worth mapping, shallow ones first: top-level modules tend to be the entry points."""
    paths = []
    for path in list_tree(files):
        parts = PurePosixPath(path).parts
        if any(part in VENDORED_DIRS or part.startswith(".") for part in parts[:-1]):
            continue
        if path.endswith(GENERATED_SUFFIXES):
            continue
        paths.append(path)
    return sorted(paths, key=lambda p: (p.count("/"), p))


class _TooLarge(Exception):
    """A file too large to be hand-written source."""


def _read_source(files: WorkspaceReader, path: str, max_bytes: int) -> bytes | None:
    """The file's bytes if it is source in a mapped language, else None; _TooLarge if generated-sized."""
    if PurePosixPath(path).suffix not in LANGUAGES:
        return None
    data = files.read_file(path)
    if len(data) > max_bytes:
        raise _TooLarge(path)
    return None if b"\0" in data[:8192] else data


@functools.cache
def _language(name: str) -> Language | None:
    module_name, function = _GRAMMAR_MODULES[name]
    try:
        module = importlib.import_module(module_name)
        return Language(getattr(module, function)())
    except ImportError:
        pass
    try:
        import tree_sitter_language_pack as pack

        return pack.get_language(name) if name in pack.downloaded_languages() else None
    except Exception:  # noqa: BLE001 - any failure of the optional pack means: no grammar
        return None


@functools.cache
def _parser(name: str) -> Parser:
    grammar = _language(name)
    assert grammar is not None
    return Parser(grammar)


@functools.cache
def _query(name: str) -> Query:
    grammar = _language(name)
    assert grammar is not None
    return Query(grammar, QUERIES[name])


def grammars_available() -> dict[str, bool]:
    """Which mapped languages have a grammar installed here (for `shipyard doctor`)."""
    return {name: _language(name) is not None for name in _GRAMMAR_MODULES}
