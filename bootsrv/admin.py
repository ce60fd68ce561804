"""The local admin API: JSON lines on a unix socket under state_dir, owner-only.

The CLI sends `{"op": ..., "args": {...}}` and reads `{"ok": true, "result": ...}`
or `{"ok": false, "error": "..."}`, as `bootsrv.ops.dispatch` answers (and logs)
them. Operations on live disks must go through
the process serving them, which is why snapshots are taken here and not by a
second process opening the files.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bootsrv.ops import OperationFailed, dispatch, names

if TYPE_CHECKING:
    from bootsrv.runtime.view import ApplianceView

MAX_REQUEST = 1 << 20


def socket_path(state_dir: Path) -> Path:
    return state_dir / "admin.sock"


class AdminServer:
    """The socket's side: one JSON line in, one out, each answered by the operations table."""

    def __init__(self, view: "ApplianceView", path: Path) -> None:
        self.view = view
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a process that died (serve checked none answers)
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path), limit=MAX_REQUEST)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _same_user(writer.get_extra_info("socket")):
                reply: dict[str, Any] = {"ok": False, "error": "permission denied"}
            else:
                line = await reader.readline()
                reply = await self._answer(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            return await dispatch(self.view, request["op"], request.get("args") or {})
        except (ValueError, KeyError, TypeError, AttributeError):
            return {"ok": False, "error": f"bad request; operations: {names()}"}


def other_instance(state_dir: Path) -> str | None:
    """A server already answering on this state_dir's socket (its disks are its own)."""
    path = socket_path(state_dir)
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return None
    return f"another bootsrv is running with this state_dir (it answers on {path})"


def _same_user(sock: socket.socket | None) -> bool:
    """SO_PEERCRED: only root and the server's own user may drive it."""
    if sock is None:
        return False
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


def call(state_dir: Path, op: str, args: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
    """The client side, for the CLI: one request, one answer."""
    path = socket_path(state_dir)
    if not path.exists():
        raise ConnectionError(f"bootsrv is not running for this configuration (no admin socket at {path})")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise ConnectionError(f"bootsrv is not running for this configuration ({path}: {exc.strerror})") from None
        sock.sendall(json.dumps({"op": op, "args": args or {}}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:  # not a ConnectionError: the request may have been carried out in part
        raise OperationFailed(f"bootsrv closed {path} without answering {op} (did it stop? see its log)")
    reply = json.loads(data)
    if not reply.get("ok"):
        raise OperationFailed(reply.get("error", "no answer"))
    return reply.get("result")
