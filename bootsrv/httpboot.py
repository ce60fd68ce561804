"""HTTP for boot files: the installer ISO that iPXE sanboots (its HTTP SAN driver reads
the image in Range requests, a few sectors at a time), and the boot files TFTP serves
(iPXE's EFI build for UEFI HTTP boot). Read-only, GET and HEAD only, h11 under a small
asyncio shell. Files are named by a callable that the image manager answers (only while an
install is recorded), then looked up under the TFTP roots by TFTP's own rules
(bootsrv.tftp.resolve: no `..`, no absolute path, no symlink out of a root).

Bounded like the other boot services: at most MAX_CONNECTIONS at once, idle ones closed,
no request bodies, and a reply is streamed from the file in CHUNK pieces (memory does not
grow with the range asked for).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import h11

from bootsrv.tftp import resolve

log = logging.getLogger("bootsrv.http")
MAX_CONNECTIONS = 64
IDLE_SECONDS = 30.0
CHUNK = 256 * 1024
MAX_HEAD = 8 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, slots=True)
class Span:
    status: int  # 200 whole file, 206 a range, 416 not satisfiable
    start: int = 0
    length: int = 0


def span(range_header: str | None, size: int) -> Span:
    """What to send for a Range header (RFC 9110 14.1.2), one range only: iPXE asks for one.
    A header that cannot be parsed is ignored (the whole file), as the RFC allows."""
    if not range_header:
        return Span(200, 0, size)
    found = _RANGE.match(range_header.strip())
    if found is None or found.group(1) == found.group(2) == "":
        return Span(200, 0, size)
    first, last = found.groups()
    if first == "":  # the last N bytes
        length = min(int(last), size)
        return Span(206, size - length, length) if length else Span(416)
    start = int(first)
    if start >= size:
        return Span(416)
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return Span(200, 0, size)
    return Span(206, start, end - start + 1)


def boot_file(roots: list[Path], url_path: str) -> Path | None:
    """The file under `roots` a URL path names, by TFTP's rules; percent-escapes are decoded
    first, so an escaped `..` or NUL is refused like a plain one."""
    return resolve(roots, unquote(url_path, errors="replace")) if roots else None


class BootHttp:
    def __init__(self, files: Callable[[str], Path | None], roots: list[Path] | None = None) -> None:
        self.files = files  # URL path -> file, or None (then the roots, then 404)
        self.roots = list(roots or [])  # the TFTP roots: their files are served too
        self._server: asyncio.AbstractServer | None = None
        self._open = 0
        self.served = 0  # requests answered (for status)
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connection, host, port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_CONNECTIONS:
            writer.close()
            return
        self._open += 1
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while True:
                request = await self._next(conn, reader)
                if not isinstance(request, h11.Request):
                    break
                while not isinstance(await self._next(conn, reader), h11.EndOfMessage):
                    pass
                await self._answer(conn, writer, request, peer)
                if conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except (h11.ProtocolError, asyncio.TimeoutError, ConnectionError, OSError) as exc:
            log.debug("boot HTTP connection ended: %s", exc)
        finally:
            self._open -= 1
            writer.close()

    @staticmethod
    async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await asyncio.wait_for(reader.read(65536), IDLE_SECONDS))

    def _lookup(self, url_path: str) -> Path | None:
        return self.files(url_path) or boot_file(self.roots, url_path)

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request,
                      peer: str) -> None:
        self.served += 1
        method, target = request.method.decode(errors="replace"), request.target.decode(errors="replace")
        path = self._lookup(target.split("?", 1)[0]) if method in ("GET", "HEAD") else None
        if path is None:
            status = 405 if method not in ("GET", "HEAD") else 404
            log.warning("HTTP %s %s %r: %d (%s)", peer, method[:16], target[:256], status,
                        "read-only server" if status == 405 else "refused or not found")
            await self._send(conn, writer, h11.Response(status_code=status, headers=[("content-length", "0")]))
            await self._send(conn, writer, h11.EndOfMessage())
            return
        headers = dict(request.headers)
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            part = span(headers.get(b"range", b"").decode(errors="replace") or None, size)
            reply = [("accept-ranges", "bytes"), ("content-type", "application/octet-stream")]
            if part.status == 416:
                reply += [("content-range", f"bytes */{size}"), ("content-length", "0")]
            else:
                reply.append(("content-length", str(part.length)))
                if part.status == 206:
                    reply.append(("content-range", f"bytes {part.start}-{part.start + part.length - 1}/{size}"))
            # One line per boot file (the access log); an ISO's many small range reads only at debug.
            log.log(logging.DEBUG if part.status == 206 else logging.INFO, "HTTP %s %s %s <- %s: %d",
                    peer, method, target[:256], path, part.status)
            await self._send(conn, writer, h11.Response(status_code=part.status, headers=reply))
            if method == "GET" and part.status != 416:
                handle.seek(part.start)
                left = part.length
                while left:
                    data = handle.read(min(CHUNK, left))
                    if not data:  # the file shrank under us: end the connection, not the server
                        raise ConnectionError(f"{path} ended early")
                    left -= len(data)
                    await self._send(conn, writer, h11.Data(data=data))
        await self._send(conn, writer, h11.EndOfMessage())

    @staticmethod
    async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, event: h11.Event) -> None:
        data = conn.send(event)
        if data:
            writer.write(data)
            await writer.drain()
