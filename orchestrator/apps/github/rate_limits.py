"""GitHub's rate limits, per installation, as GitHub's REST documentation says to honour them.

- `retry-after` in the answer: no request before that many seconds have passed;
- `x-ratelimit-remaining: 0` (the primary limit): none before `x-ratelimit-reset`, however far away;
- otherwise a secondary limit (403 or 429 saying so): at least a minute, then twice as long each time
  it happens again in a row.

Nothing sleeps: a call into an installation that must wait raises `RateLimited` at once, before any
request is made, and the desk puts that piece of work off until then and goes on with the rest.
Installation tokens have their own limits, so one installation's wait never holds up another's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

SECONDARY_WAIT = 60.0
# Doubling from a minute, a secondary limit that keeps coming back is waited out an hour at most.
SECONDARY_MAX_WAIT = 3600.0
# GitHub's reset time is in whole seconds and its clock is not ours.
RESET_SLACK = 1.0


class RateLimited(RuntimeError):
    """Calls into this installation must wait until `until` (epoch seconds); `refused` if GitHub just said so,
    rather than an earlier answer having said it."""

    def __init__(self, installation: int, until: float, why: str, refused: bool):
        super().__init__(f"installation {installation} is rate limited until {until:.0f}: {why}")
        self.installation = installation
        self.until = until
        self.refused = refused


class RateLimits:
    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._until: dict[int, tuple[float, str]] = {}
        self._strikes: dict[int, int] = {}  # secondary limits in a row
        self._lock = threading.Lock()

    def check(self, installation: int) -> None:
        """Raise RateLimited if GitHub asked this installation to wait and the time is not up."""
        with self._lock:
            until, why = self._until.get(installation, (0.0, ""))
        if self.clock() < until:
            raise RateLimited(installation, until, why, refused=False)

    def observe(self, installation: int, response: httpx.Response) -> None:
        """Note what the answer says about the installation's limits; raise RateLimited if it was refused for them."""
        wait = self._wait(installation, response)
        if wait is None:
            return
        until = self.clock() + wait
        why = f"HTTP {response.status_code} {message_of(response)}"
        with self._lock:
            self._until[installation] = (until, why)
        raise RateLimited(installation, until, why, refused=True)

    def _wait(self, installation: int, response: httpx.Response) -> float | None:
        headers = response.headers
        limited = response.status_code == 429 or (response.status_code == 403 and (
            "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in message_of(response).lower()))
        with self._lock:
            if not limited:
                self._strikes.pop(installation, None)
                return None
            if "retry-after" in headers:
                return max(_number(headers["retry-after"]), 0.0)
            if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
                return max(_number(headers["x-ratelimit-reset"]) - self.clock(), 0.0) + RESET_SLACK
            strikes = self._strikes[installation] = self._strikes.get(installation, 0) + 1
            return min(SECONDARY_WAIT * 2 ** (strikes - 1), SECONDARY_MAX_WAIT)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # an HTTP date in retry-after, which GitHub does not send: wait as for a secondary limit
        return SECONDARY_WAIT


def message_of(response: httpx.Response) -> str:
    """What GitHub's JSON answer says went wrong, or the HTTP reason."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    return str(data.get("message") or response.reason_phrase) if isinstance(data, dict) else response.reason_phrase
