"""Failed logins per source address: online guessing of CHAP secrets made slow.

After `limit` failed authentications from one address within `window` seconds,
that address may not log in for `penalty` seconds; a successful login clears its
count. Other addresses are not affected. Memory is bounded: at most `tracked`
addresses are remembered, the stalest forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Callable


class LoginThrottle:
    def __init__(self, *, limit: int = 10, window: float = 60.0, penalty: float = 60.0, tracked: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.penalty, self.tracked = limit, window, penalty, tracked
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: dict[str, float] = {}

    def failed(self, address: str) -> bool:
        """Count a failed authentication; True when this one blocks the address."""
        now = self._clock()
        times = self._failures.pop(address, None) or deque()
        times.append(now)
        while times and now - times[0] > self.window:
            times.popleft()
        self._failures[address] = times  # most recent last
        while len(self._failures) > self.tracked:
            stale, _ = self._failures.popitem(last=False)
            self._blocked_until.pop(stale, None)
        if len(times) >= self.limit:
            self._blocked_until[address] = now + self.penalty
            times.clear()
            return True
        return False

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def blocked_for(self, address: str) -> float:
        """Seconds until `address` may log in again (0: now)."""
        until = self._blocked_until.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._blocked_until[address]
            return 0.0
        return left
