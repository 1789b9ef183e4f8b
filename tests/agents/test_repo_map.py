"""The planner's view of a repo: the tree-sitter repo map, the test command, the tree and the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.repo_files import HostRepoFiles
from agents.repo_info import file_tree, read_readme
from agents.repo_map import Definition, build_repo_map, extract_definitions, grammars_available

PYTHON = """\
import os


class Engine(Base):
    \"\"\"Runs tasks.\"\"\"

    def run(self, task: str,
            retries: int = 3) -> Result:  # the main entry
        def helper():
            pass
        return helper()

    def __repr__(self):
        return "Engine"


def make_engine() -> Engine:
    return Engine()
"""

JAVASCRIPT = """\
import { makeEngine } from './engine';

export class Client extends Base {
  constructor(url) { this.url = url; }
  async send(message) {
    const inner = () => 1;
    return makeEngine().run(message);
  }
}

export function connect(url) {
  return new Client(url);
}

const retry = async (fn, times = 3) => fn();
"""

TYPESCRIPT = """\
export interface Options { verbose: boolean; run(task: string): void }
export type Id = string;
enum Color { Red, Green }
export abstract class Store<T> {
  abstract get(id: Id): T;
  put(id: Id, value: T): void {}
}
export const handler = (req: Request): Response => new Response();
"""

GO = """\
package engine

type Engine struct {
	Name string
}

type Runner interface {
	Run(task string) error
}

func (e *Engine) Run(task string) error {
	return nil
}

func NewEngine(name string) *Engine {
	return &Engine{Name: name}
}
"""

RUST = """\
pub struct Engine { name: String }

pub trait Runner {
    fn run(&self, task: &str) -> Result<(), String>;
}

impl<T> Runner for Wrapper<T> {
    fn run(&self, task: &str) -> Result<(), String> { Ok(()) }
}

pub fn new_engine(name: &str) -> Engine {
    fn local() {}
    Engine { name: name.to_string() }
}
"""


def _signatures(defs: list[Definition]) -> list[tuple[int, str]]:
    return [(d.depth, d.signature) for d in defs]


def test_grammars_are_installed() -> None:
    missing = [name for name, ok in grammars_available().items() if not ok]
    assert not missing, f"install the tree-sitter grammar wheels for {missing} (see agents/repo_map.py)"


def test_python_definitions() -> None:
    defs = extract_definitions(PYTHON.encode(), "python")
    assert _signatures(defs) == [
        (0, "class Engine(Base):"),
        (1, "def run(self, task: str, retries: int = 3) -> Result:"),
        (1, "def __repr__(self):"),
        (0, "def make_engine() -> Engine:"),
    ]
    assert [(d.name, d.line) for d in defs][:2] == [("Engine", 4), ("run", 7)]


def test_javascript_definitions() -> None:
    defs = extract_definitions(JAVASCRIPT.encode(), "javascript")
    assert _signatures(defs) == [
        (0, "class Client extends Base"),
        (1, "constructor(url)"),
        (1, "async send(message)"),
        (0, "function connect(url)"),
        (0, "const retry = async (fn, times = 3) =>"),
    ]


def test_typescript_definitions() -> None:
    defs = extract_definitions(TYPESCRIPT.encode(), "typescript")
    assert _signatures(defs) == [
        (0, "interface Options"),
        (1, "run(task: string): void"),
        (0, "type Id = string;"),
        (0, "enum Color"),
        (0, "abstract class Store<T>"),
        (1, "abstract get(id: Id): T"),
        (1, "put(id: Id, value: T): void"),
        (0, "const handler = (req: Request): Response =>"),
    ]
    assert extract_definitions(b"function App() { return <div/>; }", "tsx")[0].name == "App"


def test_go_definitions() -> None:
    defs = extract_definitions(GO.encode(), "go")
    assert _signatures(defs) == [
        (0, "Engine struct"),
        (0, "Runner interface"),
        (0, "func (e *Engine) Run(task string) error"),
        (0, "func NewEngine(name string) *Engine"),
    ]


def test_rust_definitions() -> None:
    defs = extract_definitions(RUST.encode(), "rust")
    assert _signatures(defs) == [
        (0, "pub struct Engine { name: String }"),
        (0, "pub trait Runner"),
        (1, "fn run(&self, task: &str) -> Result<(), String>;"),
        (0, "impl<T> Runner for Wrapper<T>"),
        (1, "fn run(&self, task: &str) -> Result<(), String>"),
        (0, "pub fn new_engine(name: &str) -> Engine"),
    ]
    assert defs[3].name == "Wrapper"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    files = {
        "engine/core.py": PYTHON,
        "engine/__init__.py": "from engine.core import Engine, make_engine\n",
        "cli.py": "from engine import make_engine\n\ndef main():\n    make_engine().run('x')\n",
        "web/client.js": JAVASCRIPT,
        "web/index.js": "import { connect } from './client';\nconnect('http://x').send('hi');\n",
        "go/engine.go": GO,
        "go/main.go": 'package main\n\nfunc main() { e := NewEngine("a"); e.Run("t") }\n',
        "scripts/deploy.rb": "def deploy\n  puts 'ok'\nend\n",
        "node_modules/lib/index.js": "function vendoredNodeModule() {}\n",
        "vendor/lib.go": "package lib\nfunc VendoredGo() {}\n",
        "static/app.min.js": "function minified(){}\n",
        "data/blob.py": "def binary_def():\n    pass\n\0\0\0",
        "data/huge.py": "def huge_def():\n    pass\n" + "# padding\n" * 40_000,
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    outside = tmp_path / "secret.py"
    outside.write_text("def secret_outside_repo():\n    pass\n")
    (root / "linked.py").symlink_to(outside)
    (root / "linked_dir").symlink_to(tmp_path)
    return root


def test_repo_map_ranks_and_formats(repo: Path) -> None:
    text = build_repo_map(HostRepoFiles(repo), max_chars=4_000)
    lines = text.splitlines()
    # core.py defines Engine and make_engine, mentioned by three other files: it leads.
    assert lines[0] == "engine/core.py:"
    assert lines[1:5] == [
        "  class Engine(Base):",
        "    def run(self, task: str, retries: int = 3) -> Result:",
        "    def __repr__(self):",
        "  def make_engine() -> Engine:",
    ]
    assert "go/engine.go:" in lines and "  func NewEngine(name string) *Engine" in lines
    assert "web/client.js:" in lines and "  function connect(url)" in lines
    # Languages without a grammar and files without definitions appear as paths.
    assert "scripts/deploy.rb" in lines and "cli.py:" in lines
    for hidden in (
        "vendoredNodeModule",
        "VendoredGo",
        "minified",
        "binary_def",
        "huge_def",
        "secret_outside_repo",
        "linked",
    ):
        assert hidden not in text
    assert "more files not shown" not in text


@pytest.mark.parametrize("budget", [120, 250, 500])
def test_repo_map_respects_its_budget(repo: Path, budget: int) -> None:
    text = build_repo_map(HostRepoFiles(repo), max_chars=budget)
    assert len(text) <= budget
    assert text.startswith("engine/core.py")
    assert text.endswith("more files not shown]")


def test_repo_map_caps_files_parsed(repo: Path) -> None:
    # Shallow files are parsed first; vendored, generated, huge and linked ones never count (a huge one
    # not reached yet is counted among those not shown: only reading it tells).
    text = build_repo_map(HostRepoFiles(repo), max_files=2)
    assert text == "cli.py:\n  def main():\ndata/blob.py\n[8 more files not shown]"


# --- repo_info


def _write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_file_tree_is_compact_and_bounded(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "README.md": "",
            "src/app/main.py": "",
            "src/app/util.py": "",
            "tests/test_main.py": "",
            ".git/HEAD": "",
            "node_modules/x/index.js": "",
            **{f"docs/page{i:02}.md": "" for i in range(20)},
        },
    )
    (repo / "elsewhere").symlink_to(tmp_path)
    assert file_tree(HostRepoFiles(repo), max_entries=100).splitlines()[:8] == [
        "docs/",
        "  page00.md",
        "  page01.md",
        *[f"  page{i:02}.md" for i in range(2, 7)],
    ]
    full = file_tree(HostRepoFiles(repo), max_entries=100)
    assert "src/\n  app/\n    main.py\n    util.py\ntests/\n  test_main.py" in full
    # A symlinked directory may lead out of the workspace: it is neither entered nor shown.
    assert "elsewhere" not in full and ".git" not in full and "node_modules" not in full

    small = file_tree(HostRepoFiles(repo), max_entries=8)
    assert len([line for line in small.splitlines() if "more" not in line]) == 8
    # Breadth first: the whole top level is there, the docs are cut.
    for top in ("docs/", "src/", "tests/", "README.md"):
        assert any(line.startswith(top) for line in small.splitlines())
    assert "  … 16 more" in small


def test_read_readme(tmp_path: Path) -> None:
    repo = _write(tmp_path / "repo", {"README.md": "# Demo\n" + "text " * 1000})
    assert read_readme(HostRepoFiles(repo), max_chars=10_000) == "# Demo\n" + "text " * 1000
    cut = read_readme(HostRepoFiles(repo), max_chars=100)
    assert cut is not None and cut.startswith("# Demo\ntext") and cut.endswith("[... README cut: 4907 more characters]")

    bare = tmp_path / "bare"
    bare.mkdir()
    assert read_readme(HostRepoFiles(bare)) is None
    (bare / "README.md").symlink_to("/etc/passwd")
    assert read_readme(HostRepoFiles(bare)) is None


def test_repo_map_cut_keeps_the_best_symbols_with_their_class(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "core.py": "class Engine:\n    def start(self): ...\n    def run(self): ...\n    def stop(self): ...\n",
            "use.py": "Engine().run()\n",
        },
    )
    whole = build_repo_map(HostRepoFiles(repo), max_chars=4_000)
    assert whole.startswith("core.py:\n  class Engine:\n    def start(self):")
    cut = build_repo_map(HostRepoFiles(repo), max_chars=110)
    assert cut == "core.py:\n  class Engine:\n    def run(self):\n  ⋮ 2 more\nuse.py"
