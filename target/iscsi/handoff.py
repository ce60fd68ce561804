"""Results that other threads (a store's completion thread) hand to the event loop.

Each result is queued, and the loop is woken once per batch rather than once per result (a
wake-up is a write to the loop's self-pipe and a turn of the loop): under load, completions
arrive while the loop is busy and are delivered together. Each connection a batch touched is
then flushed once, so a batch of answers leaves in one gathered write per connection.

`pending` counts what was handed out and not delivered yet, so a stopping server can wait
for every submitted command to finish before its stores close.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

log = logging.getLogger("bootsrv.iscsi")


class Handoff:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._queue: list[tuple[Callable[..., object], tuple[object, ...], Callable[[], object]]] = []
        self.pending = 0  # on the event loop only
        self._idle: asyncio.Event | None = None

    def expect(self) -> None:
        """On the event loop: one more result may come (before the work starts)."""
        self.pending += 1

    def unexpect(self) -> None:
        """On the event loop: it will not come after all (the work answered at once, or never started)."""
        self.pending -= 1

    def put(self, deliver: Callable[..., object], args: tuple[object, ...], after: Callable[[], object]) -> None:
        """From any thread: run deliver(*args) on the loop, then `after` once for the whole batch."""
        with self._lock:
            self._queue.append((deliver, args, after))
            if len(self._queue) > 1:
                return  # a wake-up is on its way already
        try:
            self._loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed: the process is ending, nobody is left to tell
            pass

    def _deliver(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        afters: dict[Callable[[], object], None] = {}
        for deliver, args, after in batch:
            self.pending -= 1
            try:
                deliver(*args)
            except Exception:  # one broken answer must not lose the others of its batch
                log.exception("delivering a command's result failed")
            afters[after] = None
        for after in afters:
            after()
        if not self.pending and self._idle is not None:
            self._idle.set()

    async def drained(self) -> None:
        """Until every expected result has been delivered."""
        while self.pending:
            self._idle = asyncio.Event()
            await self._idle.wait()
