"""A static HTTP/1.1 file server with byte ranges, for iPXE's HTTP SAN (`sanboot http://...`):
iPXE asks for the size with HEAD and then reads blocks with `Range: bytes=a-b` on one
kept-alive connection, which python's http.server cannot answer (it has no Range support).

Run in a namespace: python -m tests.support.rangehttp ROOT ADDRESS PORT; every request is
logged on stderr, so a test can tell that the client read the file through ranges.
"""

from __future__ import annotations

import re
import sys
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: iPXE reads every block on one connection

    def __init__(self, *args, root: Path, **kwargs) -> None:
        self.root = root
        super().__init__(*args, **kwargs)

    def log_request(self, code="-", size="-") -> None:
        # The range too: the log then shows which blocks the client read.
        wanted = self.headers.get("Range") if self.headers else None
        self.log_message('"%s" %s %s', self.requestline, str(code), wanted or "whole")

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _file(self) -> Path | None:
        name = self.path.split("?", 1)[0].lstrip("/")
        path = (self.root / name).resolve()
        # Only files under the root: a request cannot climb out with "..".
        return path if path.is_file() and path.is_relative_to(self.root) else None

    def _answer(self, body: bool) -> None:
        path = self._file()
        if path is None:
            self._status_only(HTTPStatus.NOT_FOUND)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted is not None:
            found = RANGE.match(wanted.strip())
            if found is None or not (found.group(1) or found.group(2)):
                self._status_only(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, size)
                return
            if found.group(1):
                start = int(found.group(1))
                end = min(int(found.group(2)), size - 1) if found.group(2) else size - 1
            else:  # "-N": the last N bytes
                start = max(0, size - int(found.group(2)))
            if start > end or start >= size:
                self._status_only(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, size)
                return
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            with open(path, "rb") as source:
                self._copy(source, start, end - start + 1)

    def _copy(self, source, start: int, length: int) -> None:
        source.seek(start)
        while length > 0:
            chunk = source.read(min(length, 1 << 20))
            if not chunk:
                break
            self.wfile.write(chunk)
            length -= len(chunk)

    def _status_only(self, status: HTTPStatus, size: int | None = None) -> None:
        self.send_response(status)
        if size is not None:
            self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(root: Path, address: str, port: int) -> ThreadingHTTPServer:
    """A server for the files under `root` (call serve_forever on it)."""
    return ThreadingHTTPServer((address, port), partial(RangeHandler, root=root.resolve()))


if __name__ == "__main__":
    root_dir, bind, bind_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    server = serve(Path(root_dir), bind, bind_port)
    print(f"serving {root_dir} on http://{bind}:{bind_port}/", file=sys.stderr, flush=True)
    server.serve_forever()
