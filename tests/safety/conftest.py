from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from safekit import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(script: Any, **options: Any) -> World:
        made.append(World(tmp_path / f"w{len(made)}", script, **options))
        return made[-1]

    yield make
    for w in made:
        w.close()
