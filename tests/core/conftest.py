"""Fixtures of the core tests (see corekit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from corekit import MakeDirector


@pytest.fixture
def make_director(tmp_path: Path) -> Iterator[MakeDirector]:
    # Imported here: xdist's controller loads this file but runs no test, and corekit brings in the whole stack.
    from corekit import director_maker

    make, made = director_maker(tmp_path)
    yield make
    for director in made:
        director.close()
