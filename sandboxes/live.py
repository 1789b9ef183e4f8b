"""The sandboxes this process has started and not stopped, stopped when it exits.

Those of a process that exits normally go with it; those of a crashed or killed
process are left to each backend's pruning (orphaned containers, cgroups).
"""

from __future__ import annotations

import atexit
import weakref
from typing import Protocol


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_live: weakref.WeakSet[_Stoppable] = weakref.WeakSet()


def track(sandbox: _Stoppable) -> None:
    """Stop `sandbox` at exit unless `untrack` was called first."""
    _live.add(sandbox)


def untrack(sandbox: _Stoppable) -> None:
    _live.discard(sandbox)


@atexit.register
def _stop_live_sandboxes() -> None:
    for sandbox in list(_live):
        sandbox.stop()
