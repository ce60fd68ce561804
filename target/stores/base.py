"""The backing-store interface: byte-addressed block storage, no SCSI in sight."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Iterator, Protocol

from target.stores.errors import FormatError, NoSpace, StoreError, WouldBlock, store_error

if TYPE_CHECKING:
    from target.stores.pieces import Pieces

__all__ = ["BlockStore", "FormatError", "NoSpace", "StoreError", "WouldBlock", "fsync_dir", "pread", "store_error"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename, link, create or unlink in this folder durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pread(fd: int, length: int, offset: int, nowait: bool = False) -> bytes | bytearray:
    """pread(2), or with `nowait` preadv2(RWF_NOWAIT): served from the page cache or
    WouldBlock. The event loop reads this way, so a cold block never stalls it."""
    if not nowait:
        return os.pread(fd, length, offset)
    buf = bytearray(length)
    try:
        got = os.preadv(fd, [buf], offset, os.RWF_NOWAIT)
    except BlockingIOError:
        raise WouldBlock from None
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot say
            return os.pread(fd, length, offset)
        raise
    if got < length:  # partly cached, or the file ends early: the thread sorts it out
        raise WouldBlock
    return buf


class BlockStore(Protocol):
    """A virtual disk. Offsets and lengths are bytes, multiples of 512.

    `write` may be cached; after `flush` returns, every write that completed
    before it is durable. `write(..., durable=True)` is a write with FUA.
    Stores that can release space (`can_unmap`) read released ranges as zeros.
    """

    @property
    def size(self) -> int: ...

    @property
    def readonly(self) -> bool: ...

    @property
    def can_unmap(self) -> bool: ...

    def refresh_size(self) -> int:
        """Look at the medium again (the admin may have grown it); returns the size."""
        ...

    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        """`nowait`: raise WouldBlock rather than wait for the disk."""
        ...

    def read_pieces(self, offset: int, length: int, *, nowait: bool = False) -> "Pieces":
        """The same bytes as `read`, as file slices a socket can take with sendfile;
        `nowait`: raise WouldBlock rather than wait for the disk."""
        ...

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None: ...

    def write_may_block(self, offset: int, length: int) -> bool:
        """Would this write wait for the disk (e.g. allocate and fdatasync)?"""
        ...

    def unmap(self, offset: int, length: int) -> None: ...

    def extents(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        """(offset, length, mapped) runs covering [offset, offset+length)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
