"""The test MCP server, runnable inside any sandbox: its script, and the `mcp` SDK it needs, copied from
this interpreter's site-packages (the sandboxes' python3 is another interpreter, the docker image's has
no packages, and nothing may be downloaded) into a directory of the workspace."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
from pathlib import Path

from packaging.requirements import Requirement

from agents.mcp_tools import McpServerSpec

SERVER = Path(__file__).parent / "mcp_server" / "probe_server.py"
SDK_DIR = ".mcp-sdk"  # in the workspace


def sdk_entries() -> list[Path]:
    """The site-packages entries (packages, modules, metadata) of `mcp` and everything it requires."""
    seen: set[tuple[str, str]] = set()
    entries: set[Path] = set()
    pending = [("mcp", "")]
    while pending:
        name, extra = pending.pop()
        key = (re.sub(r"[-_.]+", "-", name).lower(), extra)
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            if file.parts[0] != "..":  # scripts in bin/
                entries.add(Path(dist.locate_file(file.parts[0])))
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                pending += [(requirement.name, wanted) for wanted in ("", *requirement.extras)]
    return sorted(entries)


def copy_sdk(target: Path) -> None:
    """The SDK under `target`, byte for byte (compiled modules too: the sandboxes run Python 3.11 as well)."""
    target.mkdir(parents=True)
    for entry in sdk_entries():
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, target / entry.name)


def host_server(sdk: Path) -> McpServerSpec:
    """The probe server as the local backend runs it: host paths, no copy."""
    return McpServerSpec(command="python3", args=[str(SERVER)], env={"PYTHONPATH": str(sdk)}, roles=["coder"])


def install_server(sdk: Path, workspace: Path) -> McpServerSpec:
    """The probe server and the SDK (hard links to a copy made once) in `workspace`, and its spec."""
    shutil.copy(SERVER, workspace / SERVER.name)
    shutil.copytree(sdk, workspace / SDK_DIR, symlinks=True, copy_function=os.link)
    # Relative paths: the local backend's commands see the workspace at its host path, the others at /workspace.
    return McpServerSpec(command="python3", args=[SERVER.name], env={"PYTHONPATH": SDK_DIR}, roles=["coder"])
