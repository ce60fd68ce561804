"""Bounded-depth asynchronous I/O on an open rbd.Image (librbd's aio API with completions)."""

from __future__ import annotations

import threading
from typing import Any


class _Window:
    """At most `depth` requests in flight; the first error any completion reports, kept for the caller."""

    def __init__(self, depth: int):
        self.slots = threading.Semaphore(depth)
        self.depth = depth
        self.error: str | None = None

    def done(self, what: str, completion: Any) -> None:
        # runs on a librbd thread: record, never raise (an exception there is lost)
        if completion.get_return_value() < 0 and self.error is None:
            self.error = f"{what}: {completion.get_return_value()}"
        self.slots.release()

    def drain(self) -> None:
        for _ in range(self.depth):
            self.slots.acquire()
        if self.error is not None:
            raise AssertionError(f"rbd aio failed at {self.error}")


def aio_write_all(image: Any, data: bytes, chunk: int, depth: int = 32) -> None:
    """Write `data` at offset 0 in `chunk`-byte requests, `depth` in flight."""
    window = _Window(depth)
    for offset in range(0, len(data), chunk):
        window.slots.acquire()
        image.aio_write(data[offset:offset + chunk], offset,
                        lambda c, o=offset: window.done(f"write @{o}", c))
    window.drain()


def aio_read_all(image: Any, length: int, chunk: int, depth: int = 32) -> bytes:
    """Read `length` bytes from offset 0 in `chunk`-byte requests, `depth` in flight."""
    window = _Window(depth)
    pieces: dict[int, bytes] = {}

    def read_done(offset: int, completion: Any, data: bytes) -> None:
        pieces[offset] = data
        window.done(f"read @{offset}", completion)

    for offset in range(0, length, chunk):
        window.slots.acquire()
        image.aio_read(offset, min(chunk, length - offset), lambda c, d, o=offset: read_done(o, c, d))
    window.drain()
    return b"".join(pieces[offset] for offset in sorted(pieces))
