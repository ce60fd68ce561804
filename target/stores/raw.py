"""Raw image files: the disk's bytes are the file's bytes."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Iterator

from target.stores.base import StoreError
from target.stores.fileio import open_locked, read_at, sync, write_at
from target.stores.layered import SingleLayer
from target.stores.pieces import FileSlice, Pieces, file_handle, sendable

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate a file range (it then reads as zeros); False where the file system can't."""
    if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS):
        return False
    raise OSError(err, os.strerror(err))


class RawStore(SingleLayer):
    """A raw image: one layer (see target.stores.layered) with no identity of its own."""

    uuid: bytes | None = None

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False, footer_bytes: int = 0) -> None:
        self.path = os.fspath(path)
        self._readonly = readonly
        self._fd = open_locked(self.path, readonly=readonly)
        self._footer_bytes = footer_bytes  # trailing metadata that is not disk (a fixed VHD's footer)
        size = os.fstat(self._fd).st_size - footer_bytes
        if size % 512:
            os.close(self._fd)
            raise StoreError(f"{self.path}: size {size} is not a multiple of 512 bytes")
        self._size = size
        self._punch_works = True  # until the file system says otherwise

    @classmethod
    def create(cls, path: str | os.PathLike[str], size: int) -> "RawStore":
        """A new sparse image of `size` bytes (refuses to overwrite)."""
        fd = os.open(os.fspath(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(path)

    @property
    def size(self) -> int:
        return self._size

    def refresh_size(self) -> int:
        """Re-read the file's size: a file the admin grew grows the disk."""
        try:
            self._size = (os.fstat(self._fd).st_size - self._footer_bytes) // 512 * 512
        except OSError:
            pass
        return self._size

    @property
    def can_unmap(self) -> bool:
        return not self._readonly and self._punch_works

    @property
    def readonly(self) -> bool:
        return self._readonly

    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        return read_at(self._fd, self.path, offset, length, nowait)  # zeros past a truncated end

    def read_pieces(self, offset: int, length: int, *, nowait: bool = False) -> Pieces:
        """The read as a file slice for sendfile (see target.stores.pieces)."""
        return sendable([self.file_slice(offset, length)], nowait)

    def file_slice(self, offset: int, length: int) -> FileSlice:
        return FileSlice(file_handle(self._fd, self.path), offset, length)

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        write_at(self._fd, self.path, offset, data)
        if durable:
            sync(self._fd, self.path, data_only=True)

    def write_may_block(self, offset: int, length: int) -> bool:
        return False  # page-cache writes; durability waits only in flush/FUA

    def unmap(self, offset: int, length: int) -> None:
        """Punch a hole: the range reads as zeros and its blocks go back to the file system."""
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        try:
            punched = punch_hole(self._fd, offset, length)
        except OSError as exc:
            raise StoreError(f"unmap of {self.path} at {offset}: {exc.strerror}") from exc
        if not punched:
            self._punch_works = False
            self.write(offset, bytes(length))  # still reads as zeros, as LBPRZ promised

    def extents(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        end = min(offset + length, self.size)
        pos = offset
        while pos < end:
            try:
                data = os.lseek(self._fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole up to the end of the file
                    yield pos, end - pos, False
                    return
                yield pos, end - pos, True  # no SEEK_DATA here: call everything mapped
                return
            if data > pos:
                hole_end = min(data, end)
                yield pos, hole_end - pos, False
                pos = hole_end
                continue
            hole = min(os.lseek(self._fd, pos, os.SEEK_HOLE), end)
            yield pos, hole - pos, True
            pos = hole

    def flush(self) -> None:
        if self._readonly:
            return
        sync(self._fd, self.path, data_only=False)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
