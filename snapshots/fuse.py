"""A read-only FUSE file system holding one file: a snapshot's disk image.

Sans-IO: `FuseImage.handle(request bytes) -> reply bytes | None`, speaking the
Linux FUSE kernel protocol (7.x, include/uapi/linux/fuse.h) directly, so the
appliance needs no libfuse. `localmount` does the mount and the reading loop.
"""

from __future__ import annotations

import errno
import logging
import stat
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("bootsrv.fuse")

IN_HEADER = struct.Struct("<IIQQIIIHH")
OUT_HEADER = struct.Struct("<IiQ")
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
ATTR_OUT = struct.Struct("<QII")  # + ATTR
ENTRY_OUT = struct.Struct("<QQQQII")  # + ATTR
OPEN_OUT = struct.Struct("<QII")
READ_IN = struct.Struct("<QQII")
INIT_IN = struct.Struct("<IIII")
INIT_OUT = struct.Struct("<IIIIHHIIHHI28s")
STATFS_OUT = struct.Struct("<QQQQQIIII24s")
DIRENT = struct.Struct("<QQII")

LOOKUP, FORGET, GETATTR, OPEN, READ, STATFS, RELEASE, FLUSH, INIT = 1, 2, 3, 14, 15, 17, 18, 25, 26
OPENDIR, READDIR, RELEASEDIR, ACCESS, INTERRUPT, DESTROY, BATCH_FORGET = 27, 28, 29, 34, 36, 38, 42
FSYNC, FSYNCDIR = 20, 30
# Everything that would change the file system: answered "read-only file system".
_WRITES = {4, 6, 8, 9, 10, 11, 12, 13, 16, 21, 24, 35, 43, 45}
_NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}

ROOT, IMAGE = 1, 2
FOPEN_KEEP_CACHE = 1 << 1
FUSE_MAX_PAGES = 1 << 22
MAX_TRANSFER = 1 << 20
READ_BUFFER = MAX_TRANSFER + 4096  # the kernel wants room for a header beyond max_write
SECTOR = 512


@dataclass
class FuseImage:
    name: str
    size: int
    read: Callable[[int, int], bytes]  # sector-aligned reads of the disk
    mtime: float = field(default_factory=time.time)
    destroyed: bool = False

    def handle(self, request: bytes) -> bytes | None:
        if len(request) < IN_HEADER.size:
            return None
        length, opcode, unique, node, *_ = IN_HEADER.unpack_from(request)
        body = request[IN_HEADER.size:length]
        if opcode in _NO_REPLY:
            return None
        try:
            payload = self._dispatch(opcode, node, body)
        except OSError as exc:
            return OUT_HEADER.pack(OUT_HEADER.size, -(exc.errno or errno.EIO), unique)
        except Exception:  # a bad request or a failed read is an EIO, never a dead mount
            log.exception("FUSE request %d failed", opcode)
            return OUT_HEADER.pack(OUT_HEADER.size, -errno.EIO, unique)
        return OUT_HEADER.pack(OUT_HEADER.size + len(payload), 0, unique) + payload

    def _dispatch(self, opcode: int, node: int, body: bytes) -> bytes:
        if opcode == INIT:
            major, minor, readahead, _ = INIT_IN.unpack_from(body)
            if major != 7:
                raise OSError(errno.EPROTO, "FUSE major version")
            return INIT_OUT.pack(7, min(minor, 31), min(readahead, MAX_TRANSFER), FUSE_MAX_PAGES, 16, 12,
                                 MAX_TRANSFER, 1, MAX_TRANSFER // 4096, 0, 0, bytes(28))
        if opcode == GETATTR:
            return ATTR_OUT.pack(3600, 0, 0) + self._attr(node)
        if opcode == LOOKUP:
            if node != ROOT or body.split(b"\0", 1)[0].decode(errors="replace") != self.name:
                raise OSError(errno.ENOENT, "no such file")
            return ENTRY_OUT.pack(IMAGE, 1, 3600, 3600, 0, 0) + self._attr(IMAGE)
        if opcode in (OPEN, OPENDIR):
            flags = struct.unpack_from("<I", body)[0] if len(body) >= 4 else 0
            if flags & 0o3:  # O_WRONLY or O_RDWR
                raise OSError(errno.EROFS, "read-only")
            return OPEN_OUT.pack(0, FOPEN_KEEP_CACHE, 0)
        if opcode == READ:
            _, offset, size, _ = READ_IN.unpack_from(body)
            return self._read(offset, min(size, MAX_TRANSFER))
        if opcode == READDIR:
            _, offset, size, _ = READ_IN.unpack_from(body)
            return self._readdir(offset, size)
        if opcode == STATFS:
            blocks = -(-self.size // 4096)
            return STATFS_OUT.pack(blocks, 0, 0, 2, 0, 4096, 255, 4096, 0, bytes(24))
        if opcode == ACCESS:
            mask = struct.unpack_from("<I", body)[0] if len(body) >= 4 else 0
            if mask & 0o2:
                raise OSError(errno.EROFS, "read-only")
            return b""
        if opcode in (RELEASE, RELEASEDIR, FLUSH, FSYNC, FSYNCDIR):
            return b""
        if opcode == DESTROY:
            self.destroyed = True
            return b""
        if opcode in _WRITES:
            raise OSError(errno.EROFS, "read-only")
        raise OSError(errno.ENOSYS, "not implemented")

    def _attr(self, node: int) -> bytes:
        when = int(self.mtime)
        if node == ROOT:
            return ATTR.pack(ROOT, 0, 0, when, when, when, 0, 0, 0, stat.S_IFDIR | 0o555, 2, 0, 0, 0, 4096, 0)
        if node == IMAGE:
            return ATTR.pack(IMAGE, self.size, -(-self.size // 512), when, when, when, 0, 0, 0,
                             stat.S_IFREG | 0o444, 1, 0, 0, 0, 4096, 0)
        raise OSError(errno.ENOENT, "no such node")

    def _read(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        end = min(offset + size, self.size)
        first, last = offset // SECTOR * SECTOR, -(-end // SECTOR) * SECTOR
        data = self.read(first, last - first)
        return data[offset - first: end - first]

    def _readdir(self, offset: int, size: int) -> bytes:
        entries = [(ROOT, ".", stat.S_IFDIR), (ROOT, "..", stat.S_IFDIR), (IMAGE, self.name, stat.S_IFREG)]
        out = bytearray()
        for index in range(offset, len(entries)):
            node, name, mode = entries[index]
            encoded = name.encode()
            record = DIRENT.pack(node, index + 1, len(encoded), mode >> 12) + encoded
            record += bytes(-len(record) % 8)
            if len(out) + len(record) > size:
                break
            out += record
        return bytes(out)
