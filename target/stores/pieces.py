"""Read results that can stay in the page cache until the socket takes them.

A large READ need not pass through Python at all: the transport can hand the
file's pages straight to the socket with sendfile(2), saving the copy into a
Python buffer and the copy back out of it. `Pieces` is such a result: in-memory
buffers and `FileSlice`s (ranges of a file) in disk order.

A slice reads through its own duplicate of the store's descriptor. The store
may be closed before the socket takes the slice (a snapshot switches layers,
the disk is removed); with a shared descriptor number the kernel could by then
have handed that number to another file, and a client would be sent another
disk's bytes. The duplicate is closed when the last slice using it is dropped.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Union

from target.stores.base import StoreError, WouldBlock

Buffer = Union[bytes, bytearray, memoryview]


class FileHandle:
    """A private duplicate of a descriptor, closed when garbage (CPython frees it
    as soon as the last slice referring to it goes)."""

    __slots__ = ("fd",)

    def __init__(self, owned_fd: int) -> None:
        self.fd = owned_fd

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def file_handle(fd: int, path: str) -> FileHandle:
    try:
        return FileHandle(os.dup(fd))
    except OSError as exc:  # out of descriptors
        raise StoreError(f"read of {path}: {exc.strerror}") from exc


class FileSlice:
    """`length` bytes of a file at `offset`. Bytes past the file's end read as zeros."""

    __slots__ = ("handle", "offset", "length")

    def __init__(self, handle: FileHandle, offset: int, length: int) -> None:
        self.handle, self.offset, self.length = handle, offset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: slice) -> "FileSlice":
        start, stop, _ = index.indices(self.length)
        return FileSlice(self.handle, self.offset + start, max(0, stop - start))

    def tobytes(self) -> bytes:
        data = os.pread(self.handle.fd, self.length, self.offset)
        return data if len(data) == self.length else data.ljust(self.length, b"\0")


Piece = Union[Buffer, FileSlice]


class Pieces:
    """A read result made of buffers and file slices; sliceable like bytes."""

    __slots__ = ("parts", "length")

    def __init__(self, parts: list[Piece]) -> None:
        self.parts = parts
        self.length = sum(len(part) for part in parts)

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return self.length > 0

    def __getitem__(self, index: slice) -> "Pieces":
        start, stop, _ = index.indices(self.length)
        parts: list[Piece] = []
        pos = 0
        for part in self.parts:
            end = pos + len(part)
            if end > start and pos < stop:
                lo, hi = max(start, pos) - pos, min(stop, end) - pos
                parts.append(part if (lo, hi) == (0, len(part)) else part[lo:hi])
            if end >= stop:
                break
            pos = end
        return Pieces(parts)

    def tobytes(self) -> bytes:
        return b"".join(part.tobytes() if isinstance(part, FileSlice) else bytes(part) for part in self.parts)


def sendable(parts: list[Piece], nowait: bool = False) -> Pieces:
    """The read result to hand the transport. sendfile runs on the event loop,
    where waiting for the disk would stall every connection: a slice not wholly
    in the page cache raises WouldBlock with `nowait` (the event loop asking), or
    is read now and sent as bytes (a worker thread asking)."""
    for index, part in enumerate(parts):
        if isinstance(part, FileSlice) and not in_page_cache(part.handle.fd, part.offset, part.length):
            if nowait:
                raise WouldBlock
            parts[index] = part.tobytes()
    return Pieces(parts)


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [("nr_cache", ctypes.c_uint64), ("nr_dirty", ctypes.c_uint64), ("nr_writeback", ctypes.c_uint64),
                ("nr_evicted", ctypes.c_uint64), ("nr_recently_evicted", ctypes.c_uint64)]


_SYS_CACHESTAT = 451  # Linux 6.5+, the same number on x86_64 and aarch64
_PAGE = os.sysconf("SC_PAGE_SIZE")
_libc = ctypes.CDLL(None, use_errno=True)
_cachestat_works = hasattr(_libc, "syscall")


def in_page_cache(fd: int, offset: int, length: int) -> bool:
    """Are all pages of the range cached? False when the kernel cannot say
    (cachestat(2) is missing before Linux 6.5 or filtered): reads then copy."""
    global _cachestat_works
    if not _cachestat_works or length <= 0:
        return length <= 0
    first, last = offset // _PAGE, (offset + length - 1) // _PAGE
    span = _CachestatRange(first * _PAGE, (last - first + 1) * _PAGE)
    stat = _Cachestat()
    if _libc.syscall(_SYS_CACHESTAT, fd, ctypes.byref(span), ctypes.byref(stat), 0) != 0:
        if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):
            _cachestat_works = False
        return False
    return stat.nr_cache >= last - first + 1


def add_piece(parts: list[Piece], piece: Piece) -> None:
    """Append, merging a slice that continues the previous one in the same file."""
    if parts and isinstance(piece, FileSlice):
        last = parts[-1]
        if isinstance(last, FileSlice) and last.handle is piece.handle and last.offset + last.length == piece.offset:
            parts[-1] = FileSlice(last.handle, last.offset, last.length + piece.length)
            return
    parts.append(piece)
