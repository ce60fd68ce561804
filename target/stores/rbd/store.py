"""A Ceph RBD image as a backing store (`rbd:POOL/IMAGE`, `rbd:POOL/IMAGE@SNAP` read-only),
through librbd's Python binding (Debian's python3-rbd), as tgt's bs_rbd and QEMU's rbd
driver do.

Every I/O waits for the network. Reads, writes, flushes and discards are submitted
(target.stores.submit: librbd's aio calls, completed on librbd's own thread), so a session has
as many in flight as its initiator sends, with no thread each. The plain calls remain for
whoever runs on a worker thread (COMPARE AND WRITE, snapshots, a disk held still); a plain
read never answers `nowait`. The RBD cache is off: a write librbd acknowledges is on the
OSDs, so FUA and SYNCHRONIZE CACHE need nothing more (`flush` and a durable write's chained
flush still ask librbd, which is cheap with no cache, and exact whatever an image's own
settings say).

One cluster connection per process (cluster.py), shared by every image. Failures become
StoreErrors naming the image and the cluster in one line.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from functools import partial
from typing import Any, Iterator

from target.stores.errors import FormatError, NoSpace, StoreError, WouldBlock
from target.stores.layered import SingleLayer
from target.stores.pieces import Pieces
from target.stores.rbd.cluster import connect, reason, settings, split
from target.stores.rbd.lock import DiskClaim, Owner
from target.stores.submit import Done, ReadDone

log = logging.getLogger("bootsrv.rbd")
PEAK_LOGGED_FROM = 16  # requests in flight at once: a new high from here on (a power of two) is logged


class RbdStore(SingleLayer):
    """One RBD image (or a snapshot of one, read-only)."""

    # Submitted requests not completed yet, and the most at once (for the log and the tests).
    _in_flight = 0
    peak_in_flight = 0
    _counting = threading.Lock()  # one for every image: held for an increment only

    def __init__(self, locator: str, *, readonly: bool = False) -> None:
        import rados
        import rbd
        self.path = f"rbd:{locator}"
        pool, name, snap = split(locator)
        self._readonly = readonly or snap is not None
        where = f"{self.path} ({settings().describe()})"
        try:
            self._ioctx = connect().open_ioctx(pool)
        except rados.ObjectNotFound:
            raise StoreError(f"{where}: no pool {pool!r}") from None
        except rados.Error as exc:
            raise StoreError(f"{where}: pool {pool!r}: {reason(exc)}") from None
        try:
            self._image = rbd.Image(self._ioctx, name, snapshot=snap, read_only=self._readonly)
        except rbd.ImageNotFound:
            self._ioctx.close()
            raise StoreError(f"{where}: no image {name!r}{f' or snapshot {snap!r}' if snap else ''} "
                             f"in pool {pool!r}") from None
        except rbd.Error as exc:
            self._ioctx.close()
            raise StoreError(f"{where}: {reason(exc)}") from None
        self._rbd = rbd
        self._size = self._image.size()
        self._closed = False
        # Writable images are served by one node at a time (lock.py): a session claims it first.
        self._claim = None if self._readonly else DiskClaim.attach(self.path, self._image)

    # ---- what it is -------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    def refresh_size(self) -> int:
        self._size = self._call("size", self._image.size)
        return self._size

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def can_unmap(self) -> bool:
        return not self._readonly

    @property
    def uuid(self) -> bytes | None:
        return None

    # ---- one node at a time (lock.py) ---------------------------------------------------

    @property
    def claims(self) -> bool:
        """A session claims the image before using it (the event loop asks: no network)."""
        return self._claim is not None

    def claim(self, holder: str) -> None:
        """Before `holder` (a session) uses the image: take its exclusive lock (blocking), or
        raise lock.Refused naming the node that holds it."""
        if self._claim is not None:
            self._claim.claim(holder)

    def release(self, holder: str) -> None:
        if self._claim is not None:
            self._claim.release(holder)

    def lock_owner(self) -> Owner | None:
        """Which node holds the image's exclusive lock now (a network call)."""
        return self._claim.owner() if self._claim is not None else None

    # ---- I/O --------------------------------------------------------------------------

    def _check(self, offset: int, length: int) -> None:
        if offset % 512 or length % 512 or offset < 0 or offset + length > self._size:
            raise StoreError(f"{self.path}: I/O at {offset}+{length} outside the disk or not sector aligned")

    def _call(self, what: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except self._rbd.Error as exc:
            raise StoreError(f"{self.path}: {what}: {reason(exc)}") from None

    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        if nowait:
            raise WouldBlock  # every read waits for the network: a worker thread does it
        self._check(offset, length)
        data = self._call("read", self._image.read, offset, length)
        return data if len(data) == length else data + bytes(length - len(data))

    def read_pieces(self, offset: int, length: int, *, nowait: bool = False) -> Pieces:
        return Pieces([self.read(offset, length, nowait=nowait)])

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        self._check(offset, len(data))
        self._call("write", self._image.write, bytes(data), offset)
        if durable:
            self.flush()

    def write_may_block(self, offset: int, length: int) -> bool:
        return True

    def unmap(self, offset: int, length: int) -> None:
        """Release the range; it reads zeros afterwards (the LU promises LBPRZ).

        librbd's write_zeroes, not discard: both remove whole objects and zero partial ones,
        but a discard skips the partial pieces (leaving old data) when the pool's or image's
        rbd_skip_partial_discard / rbd_discard_granularity_bytes say so, and those settings
        override the connection's. write_zeroes always zeroes them."""
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        self._check(offset, length)
        self._call("write_zeroes", self._image.write_zeroes, offset, length)

    # ---- submitted I/O (target.stores.submit) ----------------------------------------

    @property
    def submits_io(self) -> bool:
        return True

    def submit_read(self, offset: int, length: int, done: ReadDone) -> None:
        self._check(offset, length)
        request = _Request(self, "read", done, length)
        self._start(request, self._image.aio_read, offset, length, request.read_done)

    def submit_write(self, offset: int, data: bytes | bytearray | memoryview, done: Done, *,
                     durable: bool = False) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        self._check(offset, len(data))
        # librbd takes bytes, and may use them until it completes: the request keeps them alive.
        request = _Request(self, "write", done, len(data), bytes(data), durable)
        self._start(request, self._image.aio_write, request.payload, offset, request.written)

    def submit_flush(self, done: Done) -> None:
        if self._readonly or (self._claim is not None and not self._claim.held):
            raise WouldBlock  # nothing written here to flush: the plain call answers at once, from a thread
        request = _Request(self, "flush", done)
        self._start(request, self._image.aio_flush, request.finished)

    def submit_unmap(self, offset: int, length: int, done: Done) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        self._check(offset, length)
        # Zeros written, not discarded: a pool or image may set rbd_skip_partial_discard, and
        # the LU promises that unmapped blocks read zeros (LBPRZ); whole objects are freed.
        request = _Request(self, "write_zeroes", done)
        self._start(request, self._image.aio_write_zeroes, offset, length, request.finished)

    def _start(self, request: "_Request", call: Any, *args: Any) -> None:
        with self._counting:
            self._in_flight += 1
            count = self._in_flight
            high = count > self.peak_in_flight
            if high:
                self.peak_in_flight = count
        if high and count >= PEAK_LOGGED_FROM and not count & (count - 1):
            log.info("%s: %d requests in flight at once (the most so far)", self.path, count)
        try:
            call(*args)
        except self._rbd.Error as exc:
            self._uncount()
            raise StoreError(f"{self.path}: {request.what}: {reason(exc)}") from None

    def _uncount(self) -> None:
        with self._counting:
            self._in_flight -= 1

    def _failure(self, what: str, code: int) -> StoreError:
        kind = NoSpace if code in (errno.ENOSPC, errno.EDQUOT) else StoreError
        return kind(f"{self.path}: {what}: {reason(OSError(code, os.strerror(code)))}")

    def _ended_with(self, request: "_Request", outcome: bytes | StoreError | None, *, counted: bool = True) -> None:
        """Tell the submitter. On librbd's thread, where an exception would only be swallowed: log it."""
        if counted:
            self._uncount()
        try:
            request.done(outcome)  # type: ignore[arg-type]
        except Exception:
            log.exception("%s: the completion of a %s failed", self.path, request.what)

    def extents(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        """Allocated runs as librbd knows them, whole RADOS objects at a time (objects of a
        clone's parent included).

        Whole objects because with fast-diff librbd answers from the object map in one read;
        a finer answer costs a request to the OSDs per object (10 ms for 512 MiB here, on
        every GET LBA STATUS), and it is not finer inside an object anyway. "Mapped" for a
        zeroed piece of an existing object is allowed: it reads zeros either way."""
        end = min(offset + length, self._size)
        found: list[tuple[int, int]] = []
        self._call("diff_iterate", partial(self._image.diff_iterate, include_parent=True, whole_object=True),
                   offset, end - offset, None,
                   lambda start, size, exists: found.append((start, start + size)) if exists else None)
        pos = offset
        for start, stop in _merged(found, offset, end):
            if start > pos:
                yield pos, start - pos, False
            yield start, stop - start, True
            pos = stop
        if pos < end:
            yield pos, end - pos, False

    def resize(self, size: int) -> None:
        """Grow the image (librbd's resize; the image stays open and served)."""
        if size < self._size:
            raise StoreError(f"{self.path}: shrinking ({self._size} -> {size}) is not supported")
        self._call("resize", self._image.resize, size)
        self._size = size

    def held_bytes(self) -> int:
        return sum(size for _, size, mapped in self.extents(0, self._size) if mapped)

    def flush(self) -> None:
        # Without the exclusive lock nothing was written here to flush (and librbd refuses it).
        if not self._readonly and (self._claim is None or self._claim.held):
            self._call("flush", self._image.flush)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._claim is not None:
                self._claim.detach(self._image)
            try:
                self._image.close()
            finally:
                self._ioctx.close()


def _merged(runs: list[tuple[int, int]], low: int, high: int) -> Iterator[tuple[int, int]]:
    """(start, stop) runs clipped to [low, high), sorted, touching ones joined: whole objects
    overhang the range asked for, and neighbours are one run to GET LBA STATUS."""
    current: tuple[int, int] | None = None
    for start, stop in sorted(runs):
        start, stop = max(start, low), min(stop, high)
        if stop <= start:
            continue
        if current and start <= current[1]:
            current = (current[0], max(current[1], stop))
            continue
        if current:
            yield current
        current = (start, stop)
    if current:
        yield current


class _Request:
    """One submitted librbd request; its methods are librbd's completion callbacks."""

    __slots__ = ("store", "what", "done", "length", "payload", "durable")

    def __init__(self, store: RbdStore, what: str, done: Any, length: int = 0, payload: bytes | None = None,
                 durable: bool = False) -> None:
        self.store, self.what, self.done = store, what, done
        self.length, self.payload, self.durable = length, payload, durable

    def read_done(self, completion: Any, data: bytes | None) -> None:
        got = completion.get_return_value()
        if got < 0:
            self.store._ended_with(self, self.store._failure("read", -got))
        elif got < self.length:  # past the end of an image that shrank under us: zeros, as read() gives
            self.store._ended_with(self, bytes((data or b"")[:got]) + bytes(self.length - got))
        else:
            self.store._ended_with(self, data)

    def written(self, completion: Any) -> None:
        got = completion.get_return_value()
        self.payload = None
        if got >= 0 and self.durable:  # FUA: the write, then a flush, before the initiator hears of it
            store = self.store
            store._uncount()
            self.what = "flush"
            try:
                store._start(self, store._image.aio_flush, self.finished)
            except StoreError as error:
                store._ended_with(self, error, counted=False)
            return
        self.store._ended_with(self, self.store._failure(self.what, -got) if got < 0 else None)

    def finished(self, completion: Any) -> None:
        got = completion.get_return_value()
        self.store._ended_with(self, self.store._failure(self.what, -got) if got < 0 else None)


def create(locator: str, size: int) -> None:
    """A new image of `size` bytes (format 2, with the features clones and exclusive locks need)."""
    import rbd
    from target.stores.rbd.images import features
    pool, name, snap = split(locator)
    if snap is not None:
        raise FormatError(f"rbd:{locator}: a snapshot is made from an image, not created")
    ioctx = connect().open_ioctx(pool)
    try:
        rbd.RBD().create(ioctx, name, size, old_format=False, features=features())
    except rbd.ImageExists:
        raise StoreError(f"rbd:{locator} already exists") from None
    except rbd.Error as exc:
        raise StoreError(f"rbd:{locator}: {reason(exc)}") from None
    finally:
        ioctx.close()
