"""TFTP for boot files, with tftpy doing the protocol and this module deciding
what may be read: read-only (uploads refused), no `..`, no absolute paths,
no symlink out of the root, quiet logging.

tftpy is given an empty root of its own, so every request reaches our
resolver (its dyn_file_func) instead of tftpy's path handling.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

import tftpy

log = logging.getLogger("bootsrv.tftp")
IPXE_FILES = Path("/usr/lib/ipxe")  # Debian's ipxe package: undionly.kpxe, ipxe.efi, snponly.efi


def resolve(roots: list[Path], requested: str) -> Path | None:
    """The file a request names, if it is inside one of the roots; else None."""
    name = requested.replace("\\", "/").lstrip("/")
    parts = PurePosixPath(name).parts
    if not name or any(part in ("..", "") for part in parts) or "\0" in name:
        return None
    for root in roots:
        real_root = root.resolve()
        try:
            candidate = (real_root / name).resolve()  # follows symlinks: then checked against the root
            if candidate.is_file() and (candidate == real_root or real_root in candidate.parents):
                return candidate
        except (OSError, RuntimeError, ValueError):  # a name too long for the file system, a symlink loop
            continue
    return None


class TftpService:
    def __init__(self, root: Path | None, listen_ip: str, port: int = 69,
                 generated: Callable[[str], bytes | None] = lambda name: None) -> None:
        self.roots = [r for r in (root, IPXE_FILES) if r is not None]
        self.generated = generated  # per-client files made on request (iPXE scripts), no temp files
        self.listen_ip, self.port = listen_ip, port
        self._empty = tempfile.TemporaryDirectory(prefix="bootsrv-tftp-")
        # tftpy logs every packet at INFO (~3x slower) and a client's normal tsize probe abort at
        # ERROR; our own log line per request says what matters.
        logging.getLogger("tftpy").setLevel(logging.CRITICAL)
        self._server = tftpy.TftpServer(self._empty.name, dyn_file_func=self._open, upload_open=self._refuse)
        self._thread: threading.Thread | None = None
        self.transfers = 0  # files handed out (for the metrics)

    def _open(self, requested: str, raddress: str | None = None, rport: int | None = None) -> BinaryIO | None:
        made = self.generated(requested.replace("\\", "/").lstrip("/"))
        if made is not None:
            log.info("TFTP %s <- generated %s", raddress, requested)
            # An anonymous in-memory file: tftpy flock()s what it serves, which BytesIO cannot do.
            fd = os.memfd_create("bootsrv-tftp")
            os.write(fd, made)
            os.lseek(fd, 0, os.SEEK_SET)
            self.transfers += 1
            return os.fdopen(fd, "rb")
        path = resolve(self.roots, requested)
        if path is None:
            log.warning("TFTP %s asked for %r: refused or not found", raddress, requested)
            return None
        log.info("TFTP %s <- %s", raddress, path)
        self.transfers += 1
        return open(path, "rb")

    @staticmethod
    def _refuse(path: str, context: object) -> None:
        log.warning("TFTP upload of %r refused (read-only server)", os.path.basename(path))
        return None

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            try:
                self._server.listen(self.listen_ip, self.port)
            except Exception:  # noqa: BLE001 - a dead TFTP thread must be visible
                log.exception("TFTP service stopped")
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="tftp", daemon=True)
        self._thread.start()
        # tftpy binds inside listen(); wait until it is listening (or failed).
        for _ in range(100):
            if getattr(self._server, "sock", None) is not None or ready.is_set():
                break
            ready.wait(0.05)
        log.info("TFTP on %s:%d serving %s", self.listen_ip, self.port, ", ".join(map(str, self.roots)))

    def stop(self) -> None:
        self._server.stop(now=True)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._empty.cleanup()
