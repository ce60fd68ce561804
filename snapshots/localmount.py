"""Mount a snapshot as a read-only file on this machine (FUSE, no libfuse).

`LocalMount.start()` mounts a FUSE file system at a folder holding `disk.img`
and serves it from a thread; the admin can then `mount -o ro,loop` it or read
it with any tool. Needs root (mount(2)) and /dev/fuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from snapshots.fuse import READ_BUFFER, FuseImage

log = logging.getLogger("bootsrv.fuse")

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MNT_DETACH = 2
IMAGE_NAME = "disk.img"


class MountError(Exception):
    pass


def unmount(folder: Path, *, lazy: bool = False) -> None:
    if _libc.umount2(os.fsencode(folder), MNT_DETACH if lazy else 0) != 0:
        err = ctypes.get_errno()
        if err == errno.EBUSY:
            raise MountError(f"{folder} is busy: unmount what uses {folder / IMAGE_NAME} first "
                             "(a loop device: umount it, then losetup -d)")
        raise MountError(f"cannot unmount {folder}: {os.strerror(err)}")


@dataclass
class LocalMount:
    folder: Path
    image: FuseImage
    _fd: int = -1
    _thread: threading.Thread | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        if not self.folder.is_dir():
            raise MountError(f"{self.folder} is not a folder")
        try:
            self._fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise MountError(f"cannot open /dev/fuse: {exc.strerror} (is the fuse module loaded?)") from None
        options = f"fd={self._fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
        if _libc.mount(b"bootsrv", os.fsencode(self.folder), b"fuse.bootsrv", MS_RDONLY | MS_NOSUID | MS_NODEV,
                       options) != 0:
            err = ctypes.get_errno()
            os.close(self._fd)
            self._fd = -1
            raise MountError(f"cannot mount at {self.folder}: {os.strerror(err)} (root and /dev/fuse are needed)")
        self._thread = threading.Thread(target=self._serve, name=f"fuse {self.folder}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                request = os.read(self._fd, READ_BUFFER)
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                    continue
                break  # ENODEV: unmounted
            reply = self.image.handle(request)
            if reply is not None:
                try:
                    os.write(self._fd, reply)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:  # ENOENT: the request was interrupted
                        log.warning("FUSE reply failed: %s", exc.strerror)
            if self.image.destroyed:
                break
        os.close(self._fd)
        self._fd = -1
        self._stopped.set()

    def stop(self, *, lazy: bool = False) -> None:
        unmount(self.folder, lazy=lazy)
        if not lazy:
            self._stopped.wait(5)
