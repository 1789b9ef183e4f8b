"""Serve a script as an OpenAI-compatible model: python -m agents.scripted_model SCRIPT --port N"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.scripted_model.script import ScriptError
from agents.scripted_model.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.scripted_model", description=__doc__)
    parser.add_argument("script", type=Path, help="YAML or JSON script of responses")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        serve(args.script, args.host, args.port)
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
