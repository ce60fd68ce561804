"""The file calls every file-backed store makes: open with the shared lock, and the
pread/pwrite loops, each failure turned into the StoreError it is.

Kept to plain functions on a descriptor: they are on the READ/WRITE path of
every block, so there is one Python frame over os.pread/pwrite and no object.
"""

from __future__ import annotations

import fcntl
import os

from target.stores.base import pread
from target.stores.errors import StoreError, store_error


def open_locked(path: str, *, readonly: bool) -> int:
    """Open a disk file, holding the shared lock: many readers may share it (a golden
    image under many clients); `bootsrv disk extend` takes it exclusively to grow it."""
    try:
        fd = os.open(path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_CLOEXEC)
    except OSError as exc:
        raise StoreError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"{path} is being changed (bootsrv disk extend); try again") from None
    return fd


def read_at(fd: int, path: str, offset: int, length: int, nowait: bool = False) -> bytes | bytearray:
    """`length` bytes at `offset`; past the file's end (a file truncated under us) zeros.
    `nowait`: WouldBlock rather than wait for the disk (see target.stores.base.pread)."""
    try:
        data = pread(fd, length, offset, nowait)
    except OSError as exc:
        raise StoreError(f"read of {path} at {offset}: {exc.strerror}") from exc
    return data if len(data) == length else data.ljust(length, b"\0")


def write_at(fd: int, path: str, offset: int, data: bytes | bytearray | memoryview) -> None:
    """All of `data` at `offset` (pwrite may write less than asked); NoSpace when full."""
    view = memoryview(data)
    try:
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
    except OSError as exc:
        raise store_error(f"write to {path} at {offset}", exc) from exc


def sync(fd: int, path: str, *, data_only: bool) -> None:
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    except OSError as exc:
        raise store_error(f"flush of {path}", exc) from exc
