"""A Ceph RBD image as a backing store (`rbd:POOL/IMAGE`, `rbd:POOL/IMAGE@SNAP` read-only),
through librbd's Python binding (Debian's python3-rbd), as tgt's bs_rbd and QEMU's rbd
driver do.

Every I/O waits for the network, so a read never answers `nowait` (the SCSI layer runs it
on a worker thread; librbd releases the GIL while it waits, so the workers overlap). The
RBD cache is off: a write librbd acknowledges is on the OSDs, so FUA and SYNCHRONIZE
CACHE need nothing more (`flush` still asks librbd, which is cheap with no cache).

One cluster connection per process (cluster.py), shared by every image. Failures become
StoreErrors naming the image and the cluster in one line.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterator

from target.stores.errors import FormatError, StoreError, WouldBlock
from target.stores.layered import SingleLayer
from target.stores.pieces import Pieces
from target.stores.rbd.cluster import connect, reason, settings, split
from target.stores.rbd.lock import DiskClaim, Owner


class RbdStore(SingleLayer):
    """One RBD image (or a snapshot of one, read-only)."""

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
