"""A FUSE file system that can lose power: the power-loss half of the faults suite.

It passes every operation through to a backing folder, but keeps what a real
disk's volatile cache would hold: the old contents of every 4 KiB page written
since that file's last fsync/fdatasync (an undo log). `crash()` then plays the
power cut: each unsynced page independently keeps its new contents or goes back
to its old ones, and the file's length is either its synced length or its newest
one, so what survives is any mix a page cache writing back in any order could
leave. Only fsync makes data safe, so bootsrv's ordering (data, fdatasync, then
the metadata that points at it) is what the trials test.

Namespace operations (create, rename, link, unlink, mkdir) are durable at once,
as on a file system that journals them synchronously; data is not. That is the
case that matters for bootsrv: a rename over a file whose data was never synced
leaves a torn file behind, and the trials would see it.

Run as a process (root, /dev/fuse), driven over stdin:

    python -m tests.support.powercut BACKING MOUNTPOINT
    -> prints "ready"; then reads commands:
       "crash SEED"  pages kept with probability SEED-chosen p in {0, 0.5, 1, random}; unmount; exit
       "stop"        unmount, nothing lost; exit
    and prints one JSON line with what was kept and lost.

The FUSE requests are decoded here with the structs of include/uapi/linux/fuse.h
(protocol 7.31), as snapshots/fuse.py does for the read-only snapshot mount.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import stat
import struct
import sys
import threading
from dataclasses import dataclass, field

from snapshots.fuse import (
    ATTR, ATTR_OUT, DIRENT, ENTRY_OUT, IN_HEADER, INIT_IN, INIT_OUT, OPEN_OUT, OUT_HEADER, STATFS_OUT)
from snapshots.localmount import MS_NODEV, MS_NOSUID, _libc, unmount

PAGE = 4096
MAX_WRITE = 1 << 20
READ_BUFFER = MAX_WRITE + PAGE

(LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ,
 WRITE, STATFS, RELEASE, FSYNC, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR, ACCESS, CREATE, INTERRUPT,
 DESTROY, BATCH_FORGET, FALLOCATE, RENAME2) = (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 25,
                                               26, 27, 28, 29, 30, 34, 35, 36, 38, 42, 43, 45)
NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE, FATTR_ATIME, FATTR_MTIME = 1, 2, 4, 8, 16, 32
FATTR_ATIME_NOW, FATTR_MTIME_NOW = 128, 256
RW_IN = struct.Struct("<QQII")  # fh, offset, size, flags: the head of fuse_read_in and fuse_write_in
WRITE_IN_SIZE = 40
FSYNC_IN = struct.Struct("<QI")
FALLOCATE_IN = struct.Struct("<QQQI")
CREATE_IN = struct.Struct("<IIII")
MKNOD_IN = struct.Struct("<IIII")
MKDIR_IN = struct.Struct("<II")
FUSE_ASYNC_READ, FUSE_BIG_WRITES, FUSE_MAX_PAGES = 1, 1 << 5, 1 << 22
OPEN_CLEAR = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_NOFOLLOW  # NOFOLLOW: we open via /proc


@dataclass
class Unsynced:
    """What one file's volatile cache holds: old page contents and its synced length."""
    fd: int  # a descriptor to put pages back through, even if the file was renamed or unlinked
    synced_size: int
    old_pages: dict[int, bytes] = field(default_factory=dict)


class PowerCutFs:
    def __init__(self, backing: str) -> None:
        root = os.open(backing, os.O_PATH | os.O_DIRECTORY)
        self.nodes: dict[int, int] = {1: root}  # FUSE node id -> O_PATH descriptor
        self.node_of_inode: dict[int, int] = {os.fstat(root).st_ino: 1}
        self.unsynced: dict[int, Unsynced] = {}  # inode -> its undo log
        self.handles: dict[int, tuple[int, bool]] = {}  # fh (a real descriptor) -> (inode, O_SYNC)
        self.listings: dict[int, list[tuple[int, str, int]]] = {}
        self.lock = threading.Lock()
        self.destroyed = self.crashed = False

    # ---- requests -------------------------------------------------------------------
    def handle(self, request: bytes) -> bytes | None:
        if len(request) < IN_HEADER.size:
            return None
        length, opcode, unique, node, *_ = IN_HEADER.unpack_from(request)
        if opcode in NO_REPLY:
            return None
        body = memoryview(request)[IN_HEADER.size:length]
        try:
            with self.lock:
                if self.crashed:  # the power is off: nothing reaches the disk any more
                    raise OSError(errno.EIO, "powered off")
                payload = self.dispatch(opcode, node, body)
        except OSError as exc:
            return OUT_HEADER.pack(OUT_HEADER.size, -(exc.errno or errno.EIO), unique)
        return OUT_HEADER.pack(OUT_HEADER.size + len(payload), 0, unique) + payload

    def dispatch(self, opcode: int, node: int, body: memoryview) -> bytes:
        if opcode == INIT:
            major, minor, _, _ = INIT_IN.unpack_from(body)
            if major != 7:
                raise OSError(errno.EPROTO, "FUSE major version")
            return INIT_OUT.pack(7, min(minor, 31), 0, FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES, 16, 12,
                                 MAX_WRITE, 1, MAX_WRITE // PAGE, 0, 0, bytes(28))
        if opcode == LOOKUP:
            return self.entry(node, name_of(body))
        if opcode == GETATTR:
            return ATTR_OUT.pack(0, 0, 0) + attr(self.nodes[node])
        if opcode == SETATTR:
            return self.setattr(node, body)
        if opcode in (OPEN, OPENDIR):
            return self.open(opcode, node, struct.unpack_from("<I", body)[0])
        if opcode == CREATE:
            flags, mode, umask, _ = CREATE_IN.unpack_from(body)
            name = name_of(body[CREATE_IN.size:])
            fd = os.open(name, (flags & ~os.O_NOCTTY) | os.O_CREAT, mode & ~umask, dir_fd=self.nodes[node])
            entry = self.entry(node, name)
            self.handles[fd] = (os.fstat(fd).st_ino, bool(flags & os.O_DSYNC))
            return entry + OPEN_OUT.pack(fd, 0, 0)
        if opcode == READ:
            fh, offset, size, _ = RW_IN.unpack_from(body)
            return os.pread(fh, size, offset)
        if opcode == WRITE:
            fh, offset, size, _ = RW_IN.unpack_from(body)
            data = body[WRITE_IN_SIZE:WRITE_IN_SIZE + size]
            inode, synchronous = self.handles[fh]
            if not synchronous:
                self.remember(fh, inode, offset, size)
            written = os.pwrite(fh, data, offset)
            return struct.pack("<II", written, 0)
        if opcode == FALLOCATE:
            fh, offset, length, mode = FALLOCATE_IN.unpack_from(body)
            self.remember(fh, self.handles[fh][0], offset, length)
            _fallocate(fh, mode, offset, length)
            return b""
        if opcode in (FSYNC, FSYNCDIR):
            fh, _ = FSYNC_IN.unpack_from(body)
            if opcode == FSYNC:
                self.synced(self.handles[fh][0])
            return b""
        if opcode in (RELEASE, RELEASEDIR):
            fh = struct.unpack_from("<Q", body)[0]
            self.handles.pop(fh, None)
            self.listings.pop(fh, None)
            os.close(fh)
            return b""
        if opcode == READDIR:
            fh, offset, size, _ = RW_IN.unpack_from(body)
            return self.readdir(fh, offset, size)
        if opcode == MKDIR:
            mode, umask = MKDIR_IN.unpack_from(body)
            name = name_of(body[MKDIR_IN.size:])
            os.mkdir(name, mode & ~umask, dir_fd=self.nodes[node])
            return self.entry(node, name)
        if opcode == MKNOD:
            mode, rdev, umask, _ = MKNOD_IN.unpack_from(body)
            name = name_of(body[MKNOD_IN.size:])
            os.mknod(name, mode & ~umask, rdev, dir_fd=self.nodes[node])
            return self.entry(node, name)
        if opcode == SYMLINK:
            name, target = bytes(body).split(b"\0")[:2]
            os.symlink(target, name, dir_fd=self.nodes[node])
            return self.entry(node, name.decode())
        if opcode == READLINK:
            return os.fsencode(os.readlink("", dir_fd=self.nodes[node]))
        if opcode in (UNLINK, RMDIR):
            os.unlink(name_of(body), dir_fd=self.nodes[node]) if opcode == UNLINK else \
                os.rmdir(name_of(body), dir_fd=self.nodes[node])
            return b""
        if opcode in (RENAME, RENAME2):
            newdir = struct.unpack_from("<Q", body)[0]
            if opcode == RENAME2 and struct.unpack_from("<I", body, 8)[0]:
                raise OSError(errno.ENOSYS, "rename flags")  # the kernel then says EINVAL to the caller
            skip = 8 if opcode == RENAME else 16
            old, new = bytes(body[skip:]).split(b"\0")[:2]
            os.rename(old, new, src_dir_fd=self.nodes[node], dst_dir_fd=self.nodes[newdir])
            return b""
        if opcode == LINK:
            old_node = struct.unpack_from("<Q", body)[0]
            name = name_of(body[8:])
            os.link(f"/proc/self/fd/{self.nodes[old_node]}", name, dst_dir_fd=self.nodes[node],
                    follow_symlinks=True)
            return self.entry(node, name)
        if opcode == STATFS:
            s = os.statvfs(f"/proc/self/fd/{self.nodes[1]}")
            return STATFS_OUT.pack(s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree, s.f_bsize, 255,
                                   s.f_frsize, 0, bytes(24))
        if opcode == ACCESS or opcode == FLUSH:
            return b""
        if opcode == DESTROY:
            self.destroyed = True
            return b""
        raise OSError(errno.ENOSYS, "not implemented")

    def entry(self, parent: int, name: str) -> bytes:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=self.nodes[parent])
        inode = os.fstat(fd).st_ino
        node = self.node_of_inode.get(inode)
        if node is None:
            node = len(self.nodes) + 1
            self.nodes[node] = fd
            self.node_of_inode[inode] = node
        else:
            os.close(fd)
        return ENTRY_OUT.pack(node, 0, 0, 0, 0, 0) + attr(self.nodes[node])

    def open(self, opcode: int, node: int, flags: int) -> bytes:
        path = f"/proc/self/fd/{self.nodes[node]}"
        if opcode == OPENDIR:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            self.listings[fd] = [(e.inode(), e.name, stat_type(e)) for e in os.scandir(fd)]
            return OPEN_OUT.pack(fd, 0, 0)
        fd = os.open(path, flags & ~OPEN_CLEAR)
        self.handles[fd] = (os.fstat(fd).st_ino, bool(flags & os.O_DSYNC))
        return OPEN_OUT.pack(fd, 0, 0)

    def setattr(self, node: int, body: memoryview) -> bytes:
        valid, _, fh, size, _, atime, mtime, _, atimens, mtimens, _, mode, _, uid, gid, _ = \
            SETATTR_IN.unpack_from(body)
        path = f"/proc/self/fd/{self.nodes[node]}"
        if valid & FATTR_MODE:
            os.chmod(path, stat.S_IMODE(mode))
        if valid & (FATTR_UID | FATTR_GID):
            os.chown(path, uid if valid & FATTR_UID else -1, gid if valid & FATTR_GID else -1)
        if valid & FATTR_SIZE:
            fd = os.open(path, os.O_WRONLY)
            try:
                current = os.fstat(fd).st_size
                if size < current:
                    self.remember(fd, os.fstat(fd).st_ino, size, current - size)
                else:
                    self.remember(fd, os.fstat(fd).st_ino, current, 0)
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        if valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW):
            now = None if valid & (FATTR_ATIME_NOW | FATTR_MTIME_NOW) else \
                (atime * 10**9 + atimens, mtime * 10**9 + mtimens)
            os.utime(path, ns=now) if now else os.utime(path)
        return ATTR_OUT.pack(0, 0, 0) + attr(self.nodes[node])

    def readdir(self, fh: int, offset: int, size: int) -> bytes:
        out = bytearray()
        for index, (inode, name, kind) in enumerate(self.listings[fh][offset:], offset):
            encoded = name.encode()
            record = DIRENT.pack(inode, index + 1, len(encoded), kind) + encoded
            record += bytes(-len(record) % 8)
            if len(out) + len(record) > size:
                break
            out += record
        return bytes(out)

    # ---- the volatile cache ---------------------------------------------------------
    def remember(self, fd: int, inode: int, offset: int, length: int) -> None:
        """Keep the old contents of the pages [offset, offset+length) touches, once per sync."""
        log = self.unsynced.get(inode)
        if log is None:
            log = self.unsynced[inode] = Unsynced(os.open(f"/proc/self/fd/{fd}", os.O_RDWR),
                                                  os.fstat(fd).st_size)
        for page in range(offset // PAGE, -(-(offset + length) // PAGE)):
            if page not in log.old_pages:
                log.old_pages[page] = os.pread(log.fd, PAGE, page * PAGE)

    def synced(self, inode: int) -> None:
        log = self.unsynced.pop(inode, None)
        if log is not None:
            os.close(log.fd)

    def crash(self, seed: int) -> dict[str, int | float | str]:
        """The power cut: every unsynced page keeps its new or goes back to its old contents."""
        rng = random.Random(seed)
        mode = rng.choice(("lose all", "keep all", "half", "random"))
        keep = {"lose all": 0.0, "keep all": 1.0, "half": 0.5}.get(mode, rng.random())
        kept = lost = 0
        with self.lock:
            self.crashed = True
            for log in self.unsynced.values():
                size = os.fstat(log.fd).st_size
                final = size if rng.random() < keep else log.synced_size
                for page, old in log.old_pages.items():
                    if rng.random() < keep:
                        kept += 1
                        continue
                    lost += 1
                    if page * PAGE < final:  # a length that survived over data that did not: zeros
                        os.pwrite(log.fd, old.ljust(min(PAGE, final - page * PAGE), b"\0"), page * PAGE)
                os.ftruncate(log.fd, final)
                os.close(log.fd)
            self.unsynced.clear()
        return {"mode": mode, "p_keep": round(keep, 3), "pages_kept": kept, "pages_lost": lost}


def name_of(body: memoryview) -> str:
    return os.fsdecode(bytes(body).split(b"\0", 1)[0])


def attr(fd: int) -> bytes:
    s = os.stat(fd)
    return ATTR.pack(s.st_ino, s.st_size, s.st_blocks, int(s.st_atime), int(s.st_mtime), int(s.st_ctime),
                     s.st_atime_ns % 10**9, s.st_mtime_ns % 10**9, s.st_ctime_ns % 10**9, s.st_mode, s.st_nlink,
                     s.st_uid, s.st_gid, s.st_rdev & 0xFFFFFFFF, PAGE, 0)


def stat_type(entry: os.DirEntry) -> int:
    return stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode) >> 12


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc.fallocate(fd, mode, ctypes.c_long(offset), ctypes.c_long(length)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def mount(folder: str) -> int:
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
    if _libc.mount(b"powercut", os.fsencode(folder), b"fuse.powercut", MS_NOSUID | MS_NODEV, options) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"mount {folder}: {os.strerror(err)}")
    return fd


def serve(fs: PowerCutFs, fuse: int) -> None:
    while not fs.destroyed:
        try:
            request = os.read(fuse, READ_BUFFER)
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                continue
            return  # ENODEV: unmounted
        reply = fs.handle(request)
        if reply is not None:
            try:
                os.write(fuse, reply)
            except OSError:
                pass  # the request was interrupted; its process is gone


def main(argv: list[str]) -> int:
    backing, folder = argv
    fs = PowerCutFs(backing)
    fuse = mount(folder)
    threads = [threading.Thread(target=serve, args=(fs, fuse), daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    report: dict[str, int | float | str] = {"mode": "stopped"}
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "crash":
            report = fs.crash(int(words[1]))
            break
        if words and words[0] == "stop":
            break
    unmount(folder, lazy=True)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
