"""Raw image files: the disk's bytes are the file's bytes."""

from __future__ import annotations

import os

from target.stores.base import StoreError


class RawStore:
    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self._readonly = readonly
        flags = os.O_RDONLY if readonly else os.O_RDWR
        try:
            self._fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise StoreError(f"cannot open {self.path}: {exc.strerror}") from exc
        size = os.fstat(self._fd).st_size
        if size % 512:
            os.close(self._fd)
            raise StoreError(f"{self.path}: size {size} is not a multiple of 512 bytes")
        self._size = size

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

    @property
    def readonly(self) -> bool:
        return self._readonly

    def read(self, offset: int, length: int) -> bytes:
        try:
            data = os.pread(self._fd, length, offset)
        except OSError as exc:
            raise StoreError(f"read of {self.path} at {offset}: {exc.strerror}") from exc
        if len(data) < length:  # a file truncated under us reads as zeros past its end
            data += bytes(length - len(data))
        return data

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self._fd, view, offset)
                view, offset = view[written:], offset + written
            if durable:
                os.fdatasync(self._fd)
        except OSError as exc:
            raise StoreError(f"write to {self.path} at {offset}: {exc.strerror}") from exc

    def flush(self) -> None:
        if self._readonly:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise StoreError(f"flush of {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
