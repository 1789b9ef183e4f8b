"""Realistic repositories for the verification tests, built offline: each one a real git repo.

They are shaped as real projects are (a src layout, tests inside the package, a suite that
fails at base for want of a token, a third-party dependency installed in a venv from a
wheel built here, a dev container), so that discovery and real test runs meet what users'
repositories hold. Python suites run with the system's /usr/bin/python3 (Debian's
python3-pytest), which bubblewrap sandboxes see as well.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import helpers
from helpers import make_repo

SYSTEM_PYTHON = "/usr/bin/python3"


def git(repo: Path, *args: str) -> str:
    """git on a repo that a docker sandbox may have given to its user (uid 1000): ownership is not checked."""
    return helpers.git(repo, "-c", "safe.directory=*", *args)


def system_pytest_available() -> bool:
    return Path(SYSTEM_PYTHON).exists() and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import pytest"], capture_output=True, check=False).returncode == 0


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def write(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)


# --- a package with a third-party dependency -------------------------------------------------


def build_wheel(dest: Path, name: str, version: str, modules: dict[str, str]) -> Path:
    """A pure-Python wheel (a zip with a .dist-info, as the wheel format has it), made without a build backend."""
    dest.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        **modules,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: realrepos\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def make_venv(path: Path, wheels: Path, *requirements: str) -> Path:
    """A venv of the system Python (seeing its pytest) with `requirements` installed from `wheels` only."""
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", "--system-site-packages", str(path)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(path / "bin" / "python3"), "install", "-q",
                    "--no-index", "--find-links", str(wheels), *requirements], check=True, capture_output=True)
    return path


def dependency_repo(path: Path) -> Path:
    """`report` needs `tinydep` (a wheel built here), installed in the venv `.venv` inside the repo."""
    repo = make_repo(path, {
        ".gitignore": ".venv/\n",
        "pyproject.toml": '[project]\nname = "report"\nversion = "0.1"\ndependencies = ["tinydep>=1.0"]\n\n'
                          '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        "report/__init__.py": "from tinydep import shout\n\n\ndef headline(text):\n    return shout(text.strip())\n",
        "tests/test_report.py": "from report import headline\n\n\ndef test_headline():\n"
                                "    assert headline(' sales up ') == 'SALES UP!'\n\n\n"
                                "def test_empty():\n    assert headline('') == '!'\n",
    })
    wheels = path.parent / f"{path.name}-wheels"
    build_wheel(wheels, "tinydep", "1.0", {"tinydep/__init__.py": "def shout(text):\n    return text.upper() + '!'\n"})
    make_venv(repo / ".venv", wheels, "tinydep")
    return repo


# --- layouts ----------------------------------------------------------------------------------


def src_layout_repo(path: Path) -> Path:
    """A src layout: the tests import `calc`, which only src/ holds; not installed anywhere."""
    return make_repo(path, {
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\n\n[tool.setuptools.packages.find]\n'
                          'where = ["src"]\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-q"\n',
        "src/calc/__init__.py": "from calc.ops import add, mean\n",
        "src/calc/ops.py": "def add(a, b):\n    return a + b\n\n\ndef mean(values):\n"
                           "    return sum(values) / len(values)\n",
        "tests/test_ops.py": "import pytest\n\nfrom calc import add, mean\n\n\n"
                             "@pytest.mark.parametrize(('a', 'b', 'total'), [(1, 2, 3), (-1, 1, 0)])\n"
                             "def test_add(a, b, total):\n    assert add(a, b) == total\n\n\n"
                             "def test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\n"
                             "def test_mean_of_nothing():\n    with pytest.raises(ZeroDivisionError):\n"
                             "        mean([])\n",
    })


def package_tests_repo(path: Path) -> Path:
    """Tests inside the package (`shop/tests/`), no pytest configuration at all, a README and docs."""
    return make_repo(path, {
        "README.md": "# shop\n\nA shopping cart.\n",
        "docs/index.md": "# Docs\n",
        "shop/__init__.py": "",
        "shop/cart.py": "class Cart:\n    def __init__(self):\n        self.items = {}\n\n"
                        "    def add(self, name, price, qty=1):\n        self.items[name] = (price, qty)\n\n"
                        "    def total(self):\n        return sum(p * q for p, q in self.items.values())\n",
        "shop/tests/__init__.py": "",
        "shop/tests/test_cart.py": "from shop.cart import Cart\n\n\ndef test_total():\n    cart = Cart()\n"
                                   "    cart.add('pen', 2, 3)\n    cart.add('ink', 5)\n"
                                   "    assert cart.total() == 11\n\n\n"
                                   "class TestEmpty:\n    def test_total_is_zero(self):\n"
                                   "        assert Cart().total() == 0\n",
    })


def add_cart_clear(files: list[str] | None = None) -> list[dict]:
    """The script of a job giving package_tests_repo's Cart a clear() (the plan names `files` if given)."""
    planned = helpers.subtask("s1", "add clear")
    return [
        helpers.plan_entry({**planned, "files": files} if files else planned),
        helpers.coder("s1", helpers.call("edit_file", path="shop/cart.py", old="    def total(self):",
                                         new="    def clear(self):\n        self.items = {}\n\n    def total(self):"),
                      helpers.call("submit", summary="clear")),
        helpers.approve("s1"),
    ]


def unittest_repo(path: Path) -> Path:
    """A unittest-only suite (TestCase classes, no pytest anywhere), one test skipped on purpose."""
    return make_repo(path, {
        "inventory/__init__.py": "",
        "inventory/stock.py": "def restock(level, amount):\n    if amount < 0:\n"
                              "        raise ValueError('negative amount')\n    return level + amount\n",
        "tests/__init__.py": "",
        "tests/test_stock.py": "import unittest\n\nfrom inventory.stock import restock\n\n\n"
                               "class RestockTest(unittest.TestCase):\n    def test_adds(self):\n"
                               "        self.assertEqual(restock(2, 3), 5)\n\n    def test_refuses_negative(self):\n"
                               "        with self.assertRaises(ValueError):\n            restock(2, -1)\n\n"
                               "    @unittest.skip('the warehouse API is not public yet')\n"
                               "    def test_remote_stock(self):\n        pass\n",
    })


# --- a suite that fails at base --------------------------------------------------------------

FAILING_BASELINE_UNITS = (
    "import pytest\n\nfrom weather.units import c_to_f, f_to_c\n\n\n"
    "def test_c_to_f():\n    assert c_to_f(100) == 212\n\n\n"
    "def test_f_to_c():\n    assert f_to_c(32) == 0\n\n\n"
    "@pytest.mark.parametrize('c', [-40, 0, 37])\ndef test_round_trip(c):\n    assert f_to_c(c_to_f(c)) == c\n"
)


def failing_baseline_repo(path: Path) -> Path:
    """A suite that fails at base for environmental reasons only.

    tests/test_remote.py needs WEATHER_API_TOKEN (a secret no sandbox has) and
    tests/test_charts.py imports weatherplot (an optional plotting plugin, not installed):
    a failing test and a module that cannot be collected, both there before any work.
    """
    return make_repo(path, {
        "pyproject.toml": '[project]\nname = "weather"\nversion = "0.1"\n\n[tool.pytest.ini_options]\n'
                          'testpaths = ["tests"]\n',
        "weather/__init__.py": "",
        "weather/units.py": "def c_to_f(c):\n    return c * 9 / 5 + 32\n\n\ndef f_to_c(f):\n"
                            "    return (f - 32) * 5 / 9\n",
        "weather/remote.py": "import os\n\n\ndef auth_header():\n"
                             "    return {'Authorization': 'Bearer ' + os.environ['WEATHER_API_TOKEN']}\n",
        "tests/test_units.py": FAILING_BASELINE_UNITS,
        "tests/test_remote.py": "from weather.remote import auth_header\n\n\ndef test_auth_header():\n"
                                "    assert auth_header()['Authorization'].startswith('Bearer ')\n",
        "tests/test_charts.py": "import weatherplot\n\n\ndef test_backend():\n    assert weatherplot.backends()\n",
    })


KELVIN_TARGET = "tests/test_units.py::test_c_to_k"


def add_kelvin_script(repo: Path) -> list[dict]:
    """The script of a job adding c_to_k to failing_baseline_repo: the coder's first try is wrong, so its new
    test fails and a test-fixer round makes it right (told which failures were there before)."""
    units = (repo / "weather/units.py").read_text()
    tests = (repo / "tests/test_units.py").read_text().replace("import c_to_f, f_to_c", "import c_to_f, c_to_k, f_to_c")
    return [
        helpers.plan_entry({**helpers.subtask("s1", "add c_to_k"), "tests": [KELVIN_TARGET]}),
        helpers.coder("s1", helpers.call("create_file", path="weather/units.py",
                                         content=units + "\n\ndef c_to_k(c):\n    return c\n"),
                      helpers.call("create_file", path="tests/test_units.py",
                                   content=tests + "\n\ndef test_c_to_k():\n    assert c_to_k(0) == 273.15\n"),
                      helpers.call("submit", summary="c_to_k")),
        {"match": {"role": "test_fixer"}, "tool_calls": [
            helpers.call("edit_file", path="weather/units.py", old="    return c\n", new="    return c + 273.15\n"),
            helpers.call("submit", summary="the offset was missing")]},
        helpers.approve("s1"),
    ]


def add_kelvin(repo: Path) -> str:
    """Good work on the failing-baseline repo: a feature and its test; returns the commit."""
    units = (repo / "weather/units.py").read_text()
    write(repo, {
        "weather/units.py": units + "\n\ndef c_to_k(c):\n    return c + 273.15\n",
        "tests/test_units.py": FAILING_BASELINE_UNITS.replace("import c_to_f, f_to_c", "import c_to_f, c_to_k, f_to_c")
        + "\n\ndef test_c_to_k():\n    assert c_to_k(0) == 273.15\n",
    })
    return commit_all(repo, "Add c_to_k")


def break_f_to_c(repo: Path) -> str:
    """Bad work: f_to_c rounds now, so tests that passed at base fail."""
    write(repo, {"weather/units.py": "def c_to_f(c):\n    return c * 9 / 5 + 32\n\n\ndef f_to_c(f):\n"
                                     "    return round((f - 32) * 5 / 9) + 1\n"})
    return commit_all(repo, "Round f_to_c")


def hide_failures(repo: Path) -> str:
    """Work made green by tampering: break f_to_c, skip its test, delete the remote test, drop an assert."""
    write(repo, {
        "weather/units.py": "def c_to_f(c):\n    return c * 9 / 5 + 32\n\n\ndef f_to_c(f):\n"
                            "    return round((f - 32) * 5 / 9) + 1\n",
        "tests/test_units.py": FAILING_BASELINE_UNITS
        .replace("def test_f_to_c():", "@pytest.mark.skip(reason='flaky')\ndef test_f_to_c():")
        .replace("def test_round_trip(c):\n    assert f_to_c(c_to_f(c)) == c\n", "def test_round_trip(c):\n"
                 "    f_to_c(c_to_f(c))\n"),
    })
    (repo / "tests/test_remote.py").unlink()
    return commit_all(repo, "Make the suite green")


# --- no tests, a dev container ---------------------------------------------------------------


def no_tests_repo(path: Path) -> Path:
    """A small tool without a single test; package.json holds npm init's placeholder test script."""
    return make_repo(path, {
        "README.md": "# tool\n",
        "pyproject.toml": '[project]\nname = "tool"\nversion = "0.1"\n',
        "tool/__init__.py": "",
        "tool/cli.py": "def main():\n    print('hello')\n",
        "package.json": '{"name": "tool-web", "scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}\n',
    })


def greet_the_world(plan: dict | None = None) -> list[dict]:
    """The script of a job making no_tests_repo's tool greet the world (after `plan`, if given)."""
    return [
        plan or helpers.plan_entry(helpers.subtask("s1", "greet the world")),
        helpers.coder("s1", helpers.call("edit_file", path="tool/cli.py", old="print('hello')",
                                         new="print('hello, world')"),
                      helpers.call("submit", summary="greets")),
        helpers.approve("s1"),
    ]


def devcontainer_repo(path: Path) -> Path:
    """A dev container (an image, comments, a trailing comma) whose postCreateCommand installs the project."""
    return make_repo(path, {
        ".devcontainer/devcontainer.json": "// The development environment\n{\n"
                                           '  "name": "greet",\n'
                                           '  "image": "mcr.microsoft.com/devcontainers/python:3.11",\n'
                                           "  /* editable, with the test extras */\n"
                                           '  "postCreateCommand": "pip install -e \'.[test]\'",\n}\n',
        "pyproject.toml": '[project]\nname = "greet"\nversion = "0.1"\n\n[project.optional-dependencies]\n'
                          'test = ["pytest"]\n',
        "greet/__init__.py": "def hello(name):\n    return f'hello {name}'\n",
        "tests/test_greet.py": "from greet import hello\n\n\ndef test_hello():\n"
                               "    assert hello('ada') == 'hello ada'\n",
    })


# --- other ecosystems ------------------------------------------------------------------------


def cargo_crate(path: Path) -> Path:
    """A crate with unit tests (one ignored), an integration test and a doc test; no dependencies."""
    return make_repo(path, {
        ".gitignore": "target/\n",
        "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n',
        "src/lib.rs": "/// Adds.\n///\n/// ```\n/// assert_eq!(calc::add(1, 2), 3);\n/// ```\n"
                      "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n"
                      "#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n"
                      "        assert_eq!(super::add(2, 2), 4);\n"
                      "    }\n\n    #[test]\n    #[ignore]\n    fn slow() {}\n}\n",
        "tests/api.rs": "#[test]\nfn negative() {\n    assert_eq!(calc::add(-1, -1), -2);\n}\n",
    })


def cargo_env() -> dict[str, str] | None:
    """PATH, CARGO_HOME and RUSTUP_HOME for running the host's cargo with another HOME; None without cargo."""
    cargo = shutil.which("cargo")
    if cargo is None:
        return None
    home = Path.home()
    return {"PATH": f"{Path(cargo).parent}:/usr/bin:/bin", "CARGO_HOME": str(home / ".cargo"),
            "RUSTUP_HOME": str(home / ".rustup")}


def node_repo(path: Path) -> Path:
    """A package whose test script is Node's own runner."""
    return make_repo(path, {
        "package.json": '{"name": "slug", "version": "1.0.0", "scripts": {"test": "node --test"}}\n',
        "index.js": "exports.slug = (s) => s.trim().toLowerCase().replace(/\\s+/g, '-');\n",
        "test/slug.test.js": "const test = require('node:test');\nconst assert = require('node:assert');\n"
                             "const { slug } = require('../index.js');\n\n"
                             "test('slugs', () => assert.strictEqual(slug(' Hello World '), 'hello-world'));\n",
    })
