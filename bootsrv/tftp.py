"""TFTP for boot files, with tftpy doing the protocol and this module deciding
what may be read: read-only (uploads refused), no `..`, no absolute paths,
no symlink out of the root, quiet logging.

tftpy is given an empty root of its own, so every request reaches our
resolver (its dyn_file_func) instead of tftpy's path handling.

The server loop is ours, not tftpy's TftpServer.listen(): that one select()s, and select() fails
("filedescriptor out of range") once the process has more than 1024 descriptors open, which
killed TFTP silently. Ours waits with selectors (epoll) and drives the same tftpy contexts
(TftpContextServer.start/cycle/checkTimeout, state.resendLast), with a cap on concurrent
transfers; if it dies anyway, `failed` says why and `alive` turns False.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from tftpy.TftpContexts import TftpContextServer
from tftpy.TftpShared import (DEF_TIMEOUT_RETRIES, MAX_BLKSIZE, SOCK_TIMEOUT, TftpErrors, TftpException, TftpTimeout,
                              TftpTimeoutExpectACK)

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
    # At most this many transfers at once; a request past it is dropped before anything is
    # allocated for it (no socket, no file), and the client's retransmission gets a later slot.
    MAX_TRANSFERS = 256
    TIMEOUT = SOCK_TIMEOUT  # seconds without traffic before a resend, as tftpy
    RETRIES = DEF_TIMEOUT_RETRIES  # resends before a transfer is given up, as tftpy
    SWEEP = 0.25  # how often the transfers are looked over for timeouts

    def __init__(self, root: Path | None, listen_ip: str, port: int = 69,
                 generated: Callable[[str], bytes | None] = lambda name: None) -> None:
        self.roots = [r for r in (root, IPXE_FILES) if r is not None]
        self.generated = generated  # per-client files made on request (iPXE scripts), no temp files
        self.listen_ip, self.port = listen_ip, port
        self._empty = tempfile.TemporaryDirectory(prefix="bootsrv-tftp-")
        # tftpy logs every packet at INFO (~3x slower) and a client's normal tsize probe abort at
        # ERROR; our own log line per request says what matters.
        logging.getLogger("tftpy").setLevel(logging.CRITICAL)
        self._sock: socket.socket | None = None
        self._sessions: dict[tuple[str, int], TftpContextServer] = {}
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._last_busy_log = 0.0
        self.transfers = 0  # files handed out (for the metrics)
        self.failed: str | None = None  # why the TFTP loop stopped, if it died; None while fine

    @property
    def alive(self) -> bool:
        """The loop thread is running and has not failed."""
        return self._thread is not None and self._thread.is_alive() and self.failed is None

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
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.listen_ip or "0.0.0.0", self.port))
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
        except OSError as err:
            # As before: a TFTP that cannot listen does not stop the appliance, but it is said.
            self.failed = f"cannot listen on {self.listen_ip}:{self.port}: {err}"
            log.error("TFTP %s", self.failed)
            return
        self._sock = sock
        self.port = sock.getsockname()[1]  # the real one when asked for port 0
        self._stopping.clear()
        self.failed = None
        self._thread = threading.Thread(target=self._run, name="tftp", daemon=True)
        self._thread.start()
        log.info("TFTP on %s:%d serving %s", self.listen_ip, self.port, ", ".join(map(str, self.roots)))

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:  # already woken (buffer full) or closed
            pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._thread is None or not self._thread.is_alive():
            self._close_all()
            self._wake_r.close()
            self._wake_w.close()
        self._empty.cleanup()

    # The loop: tftpy's TftpServer.listen() without its select() (FD_SETSIZE: it dies past 1024
    # descriptors in the process). Same contexts, same start()/cycle()/checkTimeout()/resendLast().

    def _run(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                self._loop(selector)
        except Exception as err:  # noqa: BLE001 - a dead TFTP thread must be visible
            self.failed = f"TFTP loop died: {type(err).__name__}: {err}"
            log.exception("TFTP service stopped: loop died")
        finally:
            self._close_all()

    def _loop(self, selector: selectors.BaseSelector) -> None:
        assert self._sock is not None
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        selector.register(self._sock, selectors.EVENT_READ, self._sock)
        next_sweep = time.monotonic() + self.SWEEP
        while not self._stopping.is_set():
            wait = max(0.0, next_sweep - time.monotonic()) if self._sessions else None
            for key, _ in selector.select(wait):
                if key.data is None:
                    self._drain_wake()
                elif key.data is self._sock:
                    self._request(selector)
                else:
                    self._traffic(selector, key.data)
            if self._sessions and time.monotonic() >= next_sweep:
                self._sweep(selector)
                next_sweep = time.monotonic() + self.SWEEP
            elif not self._sessions:
                next_sweep = time.monotonic() + self.SWEEP

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _request(self, selector: selectors.BaseSelector) -> None:
        """A datagram on the listening port: a new transfer (tftpy: one context per client ip:port)."""
        assert self._sock is not None
        try:
            buffer, (raddress, rport) = self._sock.recvfrom(MAX_BLKSIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:  # e.g. an ICMP error queued on the socket: not the loop's end
            log.debug("TFTP recvfrom on the listening socket: %s", err)
            return
        key = (raddress, rport)
        if key in self._sessions:
            return  # a retransmitted request for a transfer already under way (tftpy ignores it too)
        if len(self._sessions) >= self.MAX_TRANSFERS:
            now = time.monotonic()
            if now - self._last_busy_log > 10:
                self._last_busy_log = now
                log.warning("TFTP busy: %d transfers under way, request from %s dropped",
                            len(self._sessions), raddress)
            return
        context = TftpContextServer(raddress, rport, self.TIMEOUT, self._empty.name,
                                    self._open, self._refuse, retries=self.RETRIES)
        self._sessions[key] = context
        selector.register(context.sock, selectors.EVENT_READ, key)
        try:
            context.start(buffer)
        except TftpTimeoutExpectACK:
            self._timed_out(selector, key, context)
        except TftpException as err:
            log.debug("TFTP %s:%d: %s", raddress, rport, err)
            self._end(selector, key)
        except Exception:  # noqa: BLE001 - one bad request (a 1-byte datagram, a failing
            # generator) ends that transfer, not the service
            self._fail(selector, key, "request from")
        else:
            if context.state is None:
                self._end(selector, key)

    def _traffic(self, selector: selectors.BaseSelector, key: tuple[str, int]) -> None:
        context = self._sessions.get(key)
        if context is None:
            return
        context.timeout_expectACK = False
        try:
            context.cycle()
        except TftpTimeoutExpectACK:
            self._timed_out(selector, key, context)
            return
        except TftpException as err:
            log.debug("TFTP %s:%d: %s", *key, err)
            self._end(selector, key)
            return
        except Exception:  # noqa: BLE001 - see _request
            self._fail(selector, key, "transfer to")
            return
        if context.state is None:  # done
            self._end(selector, key)

    def _sweep(self, selector: selectors.BaseSelector) -> None:
        now = time.time()
        for key, context in list(self._sessions.items()):
            try:
                context.checkTimeout(now)
            except TftpTimeout:
                self._timed_out(selector, key, context)

    def _timed_out(self, selector: selectors.BaseSelector, key: tuple[str, int],
                   context: TftpContextServer) -> None:
        """tftpy's handling of a timeout: count it, resend the last packet, give up after the retries."""
        # tftpy leaves timeout_expectACK set, so every later pass of its loop resends again; here
        # it is a single resend, and the next one waits for the normal timeout.
        context.timeout_expectACK = False
        context.retry_count += 1
        if context.retry_count >= context.retries:
            log.debug("TFTP %s:%d: no answer, transfer given up", *key)
            self._end(selector, key)
            return
        try:
            context.state.resendLast()
            context.last_update = time.time()
        except TftpException as err:
            log.debug("TFTP %s:%d: %s", *key, err)
            self._end(selector, key)
        except Exception:  # noqa: BLE001 - see _request
            self._fail(selector, key, "resend to")

    def _fail(self, selector: selectors.BaseSelector, key: tuple[str, int], what: str) -> None:
        """An unexpected exception in one transfer: said with its traceback, the client told with
        a TFTP error (else it retransmits its request until it gives up), the transfer ended."""
        log.exception("TFTP %s %s:%d failed", what, *key)
        context = self._sessions.get(key)
        if context is not None:
            # ERROR, code 0 "not defined" (tftpy's own packet class has no message for code 0)
            error = struct.pack("!HH", 5, TftpErrors.NotDefined) + b"server error\0"
            try:
                context.sock.sendto(error, (context.host, context.tidport or context.port))
            except OSError:
                pass  # best effort
        self._end(selector, key)

    def _end(self, selector: selectors.BaseSelector | None, key: tuple[str, int]) -> None:
        context = self._sessions.pop(key, None)
        if context is None:
            return
        if selector is not None:
            try:
                selector.unregister(context.sock)
            except (KeyError, ValueError, OSError):
                pass
        try:
            context.end()
        except Exception:  # noqa: BLE001 - closing must not take the loop down
            log.exception("TFTP closing the transfer to %s:%d", *key)

    def _close_all(self) -> None:
        for key in list(self._sessions):
            self._end(None, key)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
