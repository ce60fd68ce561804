"""The FUSE codec without a kernel: requests as the kernel sends them, replies checked field by field."""

from __future__ import annotations

import errno
import os
import struct

from hypothesis import given, settings, strategies as st

from snapshots import fuse

DATA = os.urandom(1 << 20)


def image() -> fuse.FuseImage:
    return fuse.FuseImage("disk.img", len(DATA), lambda off, n: DATA[off:off + n], mtime=1_700_000_000)


def request(opcode: int, body: bytes = b"", node: int = fuse.ROOT, unique: int = 7) -> bytes:
    return fuse.IN_HEADER.pack(fuse.IN_HEADER.size + len(body), opcode, unique, node, 0, 0, 1, 0, 0) + body


def reply(raw: bytes | None) -> tuple[int, bytes]:
    assert raw is not None
    length, error, unique = fuse.OUT_HEADER.unpack_from(raw)
    assert length == len(raw) and unique == 7
    return error, raw[fuse.OUT_HEADER.size:]


def test_init_lookup_getattr_read():
    fs = image()
    error, body = reply(fs.handle(request(fuse.INIT, fuse.INIT_IN.pack(7, 38, 131072, 0) + bytes(48))))
    assert error == 0 and fuse.INIT_OUT.unpack(body)[:2] == (7, 31)
    error, body = reply(fs.handle(request(fuse.LOOKUP, b"disk.img\0")))
    entry = fuse.ENTRY_OUT.unpack_from(body)
    attr = fuse.ATTR.unpack_from(body, fuse.ENTRY_OUT.size)
    assert error == 0 and entry[0] == fuse.IMAGE and attr[1] == len(DATA) and attr[9] & 0o777 == 0o444
    assert reply(fs.handle(request(fuse.LOOKUP, b"other\0")))[0] == -errno.ENOENT
    error, body = reply(fs.handle(request(fuse.READ, fuse.READ_IN.pack(0, 1000, 5000, 0) + bytes(16),
                                          node=fuse.IMAGE)))
    assert error == 0 and body == DATA[1000:6000]  # unaligned reads are served from aligned ones
    error, body = reply(fs.handle(request(fuse.READ, fuse.READ_IN.pack(0, len(DATA) - 10, 4096, 0) + bytes(16),
                                          node=fuse.IMAGE)))
    assert body == DATA[-10:]


def test_writes_are_refused_and_unknown_requests_are_not_implemented():
    fs = image()
    assert reply(fs.handle(request(fuse.OPEN, struct.pack("<II", os.O_RDWR, 0), node=fuse.IMAGE)))[0] == -errno.EROFS
    assert reply(fs.handle(request(16, bytes(40), node=fuse.IMAGE)))[0] == -errno.EROFS  # WRITE
    assert reply(fs.handle(request(39)))[0] == -errno.ENOSYS  # IOCTL
    assert fs.handle(request(fuse.FORGET, bytes(8))) is None


def test_readdir_lists_the_image():
    fs = image()
    error, body = reply(fs.handle(request(fuse.READDIR, fuse.READ_IN.pack(0, 0, 4096, 0) + bytes(16))))
    names = []
    while body:
        ino, off, namelen, kind = fuse.DIRENT.unpack_from(body)
        names.append(body[fuse.DIRENT.size:fuse.DIRENT.size + namelen].decode())
        body = body[(fuse.DIRENT.size + namelen + 7) // 8 * 8:]
    assert names == [".", "..", "disk.img"]


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 50))
def test_any_request_gets_a_reply_or_none_never_an_exception(body, opcode):
    fs = image()
    fs.handle(request(opcode, body))
    fs.handle(body)
