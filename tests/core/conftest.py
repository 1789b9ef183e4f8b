"""Fixtures of the core tests (see corekit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from corekit import MakeDirector, director_maker


@pytest.fixture
def make_director(tmp_path: Path) -> Iterator[MakeDirector]:
    make, made = director_maker(tmp_path)
    yield make
    for director in made:
        director.close()
