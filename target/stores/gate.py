"""A store that can be held still and swapped while initiators use it.

Snapshots, rollbacks and merges change which file backs a disk. They do it
here, below the SCSI layer: `hold()` lets in-flight I/O finish, keeps new I/O
waiting, and hands the holder the store; `swap()` (inside a hold) puts another
store in its place. Initiators see a pause, never an error.

A gate can also *park* its store: close the files of a disk nobody uses (a lab
has thousands of clients, most of them switched off, and every open VHD layer
is a descriptor). The next I/O, or the next hold, opens the store again.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from target.stores.base import BlockStore, WouldBlock
from target.stores.layered import LayeredStore
from target.stores.pieces import Pieces
from target.stores.submit import Done, ReadDone


class ParkedStore:
    """Stands in for a closed store: knows its shape, opens the real one on first use."""

    def __init__(self, gate: "GatedStore", store: BlockStore, open_store: Callable[[], BlockStore]) -> None:
        self._gate, self._open_store = gate, open_store
        self.size, self.readonly, self.can_unmap = store.size, store.readonly, store.can_unmap
        self.submits_io = getattr(store, "submits_io", False)  # asked on the event loop: never opens
        self._lock = threading.Lock()
        self._real: BlockStore | None = None
        # A store claimed per session (an RBD image, rbd/lock.py): its sessions' claims outlive a park.
        self.claims: bool = getattr(store, "claims", False)
        self._release = getattr(store, "release", None)

    def release(self, holder: str) -> None:
        if self._release is not None:
            self._release(holder)

    def unpark(self) -> BlockStore:
        with self._lock:  # several commands may arrive at once: one opens, all use it
            if self._real is None:
                self._real = self._open_store()
                self._gate.inner = self._real
            return self._real

    # The event loop reads and writes without waiting (nowait): opening files is for a thread.
    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        if nowait and self._real is None:
            raise WouldBlock
        return self.unpark().read(offset, length, nowait=nowait)

    def read_pieces(self, offset: int, length: int, *, nowait: bool = False) -> Pieces:
        if nowait and self._real is None:
            raise WouldBlock
        return self.unpark().read_pieces(offset, length, nowait=nowait)

    def write_may_block(self, offset: int, length: int) -> bool:
        return self._real is None or self._real.write_may_block(offset, length)

    def refresh_size(self) -> int:
        # The periodic capacity check must not open every parked disk: nobody is logged in
        # to be told, and the opened store's size is looked at by the next check.
        return self._real.refresh_size() if self._real is not None else self.size

    def __getattr__(self, name: str) -> object:  # every other BlockStore call: open, then ask the real store
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.unpark(), name)


class GatedStore:
    def __init__(self, inner: BlockStore) -> None:
        self.inner: BlockStore | ParkedStore = inner
        # The hot path takes the plain lock (C-level); only waiting goes through the condition.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._active = 0
        self._held = False
        self.last_hold_seconds = 0.0  # how long the last hold kept I/O waiting

    @property
    def held(self) -> bool:
        return self._held

    def _enter(self) -> BlockStore:
        with self._lock:
            while self._held:
                self._cond.wait()
            self._active += 1
            return self.inner

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1
            if self._held and not self._active:
                self._cond.notify_all()

    @contextmanager
    def hold(self) -> Iterator[BlockStore]:
        """Drain in-flight I/O and keep new I/O waiting until the block ends.
        The holder must use the yielded store, not this one (that would wait on itself)."""
        with self._cond:
            while self._held:  # one holder at a time
                self._cond.wait()
            self._held = True
            started = time.monotonic()
            while self._active:
                self._cond.wait()
        try:
            if isinstance(self.inner, ParkedStore):  # holders (snapshots, resets) work on the real store
                self.inner.unpark()
            yield self.inner
        finally:
            with self._cond:
                self._held = False
                self.last_hold_seconds = time.monotonic() - started
                self._cond.notify_all()

    def reopen(self, open_store: Callable[[], BlockStore], before_open: Callable[[], None] | None = None) -> None:
        """Serve from a store opened afresh on the same files, all under one hold. The old
        store is flushed first: a VHD store keeps the bitmap bits of writes since the last
        flush in memory, and a new store opened (or let in to read) before they are on disk
        would miss them, read those sectors from the parent, and write its stale bitmap
        over them at its next flush."""
        with self.hold() as store:
            store.flush()
            if before_open is not None:
                before_open()
            old = self.swap(open_store())
            old.close()

    def unparked(self) -> BlockStore:
        """The real store, opened if it was parked (to look at its layers, not for I/O)."""
        inner = self.inner
        return inner.unpark() if isinstance(inner, ParkedStore) else inner

    def layers(self) -> list[LayeredStore]:
        """The layers of the store behind the gate, top first (opened if it was parked):
        what a snapshot looks at before it holds the disk."""
        return self.unparked().layers()  # type: ignore[attr-defined]

    @property
    def parked(self) -> bool:
        return isinstance(self.inner, ParkedStore)

    def park(self, open_store: Callable[[], BlockStore]) -> bool:
        """Flush and close the store, keeping its shape; `open_store` opens it again when
        it is next used. Returns False when already parked. Under a hold: nothing is in flight."""
        with self._cond:
            if self._held or isinstance(self.inner, ParkedStore):
                return False
            self._held = True
            while self._active:
                self._cond.wait()
        try:
            store = self.inner
            store.flush()
            self.inner = ParkedStore(self, store, open_store)
            store.close()
            return True
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()

    def swap(self, store: BlockStore) -> BlockStore:
        """Inside a hold: serve from `store` from now on; returns the old one (still open)."""
        if not self._held:
            raise RuntimeError("GatedStore.swap outside hold()")
        old, self.inner = self.inner, store
        return old

    # ---- stores a session claims first (an RBD image: one node at a time) -----------------

    @property
    def claims(self) -> bool:
        """Whether a session must claim the store before using it (asked on the event loop)."""
        return bool(getattr(self.inner, "claims", False))

    def claim(self, holder: str) -> None:
        """Blocking (a worker thread): may raise a StoreError saying why not here."""
        claim = getattr(self.unparked(), "claim", None)
        if claim is not None:
            claim(holder)

    def release(self, holder: str) -> None:
        release = getattr(self.inner, "release", None)
        if release is not None:
            release(holder)

    # ---- BlockStore, each call between _enter and _leave ----------------------

    @property
    def size(self) -> int:
        return self.inner.size

    @property
    def readonly(self) -> bool:
        return self.inner.readonly

    @property
    def can_unmap(self) -> bool:
        return self.inner.can_unmap

    def refresh_size(self) -> int:
        store = self._enter()
        try:
            return store.refresh_size()
        finally:
            self._leave()

    # read and write inline _enter/_leave: they are on every command's path.
    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        with self._lock:
            while self._held:
                if nowait:
                    raise WouldBlock
                self._cond.wait()
            self._active += 1
            store = self.inner
        try:
            return store.read(offset, length, nowait=nowait)
        finally:
            with self._lock:
                self._active -= 1
                if self._held and not self._active:
                    self._cond.notify_all()

    def read_pieces(self, offset: int, length: int, *, nowait: bool = False) -> Pieces:
        # The slices keep their own descriptors: the layers may be swapped once this returns.
        if nowait and self._held:
            raise WouldBlock  # a held disk would make the event loop wait: a thread waits instead
        store = self._enter()
        try:
            return store.read_pieces(offset, length, nowait=nowait)
        finally:
            self._leave()

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        with self._lock:
            while self._held:
                self._cond.wait()
            self._active += 1
            store = self.inner
        try:
            store.write(offset, data, durable=durable)
        finally:
            with self._lock:
                self._active -= 1
                if self._held and not self._active:
                    self._cond.notify_all()

    def write_may_block(self, offset: int, length: int) -> bool:
        # While held, a write waits for the holder: better on a worker thread than on the event loop.
        return self._held or self.inner.write_may_block(offset, length)

    # ---- submitted I/O (target.stores.submit), counted as in flight until it completes ----

    @property
    def submits_io(self) -> bool:
        return getattr(self.inner, "submits_io", False)

    def submit_read(self, offset: int, length: int, done: ReadDone) -> None:
        self._submit("submit_read", done, offset, length)

    def submit_write(self, offset: int, data: bytes | bytearray | memoryview, done: Done, *,
                     durable: bool = False) -> None:
        self._submit("submit_write", done, offset, data, durable=durable)

    def submit_flush(self, done: Done) -> None:
        self._submit("submit_flush", done)

    def submit_unmap(self, offset: int, length: int, done: Done) -> None:
        self._submit("submit_unmap", done, offset, length)

    def _submit(self, call: str, done: Callable[..., None], *args: object, **options: object) -> None:
        """A hold waits for submitted requests as for any other I/O; a held or parked disk
        cannot take one without waiting (WouldBlock: the caller uses a thread)."""
        with self._lock:
            if self._held or isinstance(self.inner, ParkedStore):
                raise WouldBlock
            self._active += 1
            store = self.inner

        def finished(outcome: object) -> None:
            self._leave()
            done(outcome)

        try:
            getattr(store, call)(*args, finished, **options)
        except BaseException:
            self._leave()
            raise

    def unmap(self, offset: int, length: int) -> None:
        store = self._enter()
        try:
            store.unmap(offset, length)
        finally:
            self._leave()

    def extents(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        store = self._enter()
        try:
            return iter(list(store.extents(offset, length)))
        finally:
            self._leave()

    def flush(self) -> None:
        store = self._enter()
        try:
            store.flush()
        finally:
            self._leave()

    def close(self) -> None:
        with self._cond:  # a parked store has nothing open: no need to open it to close it
            if isinstance(self.inner, ParkedStore) and not self._held:
                return
        with self.hold() as store:
            store.close()
