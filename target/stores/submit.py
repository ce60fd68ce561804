"""Submitted I/O: an optional store capability, for stores whose every call waits for the network.

A store that offers it (`submits_io` true, e.g. RBD through librbd's aio calls) starts a read,
write, flush or discard and returns at once; `done` is called exactly once, later, on the
store's own completion thread (never the caller's), with the outcome: the bytes read, None
for a finished write, or the StoreError it failed with. The caller hands that outcome to its
own thread. So many requests are in flight with no thread each.

A `submit_*` call may raise instead, before anything started (and `done` is then never
called): a StoreError for a request the store refuses (outside the disk, read-only), or
WouldBlock when the plain call should do it instead (a disk held still for a snapshot, or
parked, cannot start without waiting; a read-only image has nothing to flush): the caller then
does the same I/O with the plain calls, from a thread.

Stores without it (raw, VHD) keep the plain BlockStore calls only.
"""

from __future__ import annotations

from typing import Callable, Protocol

from target.stores.errors import StoreError

ReadDone = Callable[[bytes | StoreError], None]
Done = Callable[[StoreError | None], None]


class SubmitsIO(Protocol):
    @property
    def submits_io(self) -> bool: ...

    def submit_read(self, offset: int, length: int, done: ReadDone) -> None: ...

    def submit_write(self, offset: int, data: bytes | bytearray | memoryview, done: Done, *,
                     durable: bool = False) -> None:
        """`durable`: `done` only once the data is durable (FUA)."""
        ...

    def submit_flush(self, done: Done) -> None:
        """`done` once every write finished before this call is durable."""
        ...

    def submit_unmap(self, offset: int, length: int, done: Done) -> None: ...


def submits_io(store: object) -> bool:
    """Does this store take submitted I/O (now: stores may change behind a gate)?"""
    return getattr(store, "submits_io", False)
