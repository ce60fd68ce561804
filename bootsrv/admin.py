"""The local admin API: JSON lines on a unix socket under state_dir, owner-only.

The CLI sends `{"op": ..., "args": {...}}` and reads `{"ok": true, "result": ...}`
or `{"ok": false, "error": "..."}`. Operations on live disks must go through
the process serving them, which is why snapshots are taken here and not by a
second process opening the files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bootsrv.config import ConfigError, StartupError
from bootsrv.confedit import edit_config
from snapshots.engine import SnapshotEngine, SnapshotError
from snapshots.localmount import MountError
from target.stores.base import StoreError
from target.stores.vhd import VhdFormatError, read_footer

if TYPE_CHECKING:
    from bootsrv.app import Appliance

log = logging.getLogger("bootsrv.admin")
MAX_REQUEST = 1 << 20
STARTED = time.time()
# Quick reads of state the event loop owns (sessions, the DHCP lease database): not on a worker thread.
_ON_LOOP = frozenset({"status", "clients", "sessions", "config.reload", "config.edit", "client.forget"})


def socket_path(state_dir: Path) -> Path:
    return state_dir / "admin.sock"


class AdminServer:
    def __init__(self, app: "Appliance") -> None:
        self.app = app
        self.path = socket_path(app.config.server.state_dir)
        self._server: asyncio.AbstractServer | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], Any]] = {
            "status": self._status,
            "snapshot.create": lambda a: self._engine().create(str(a["disk"]), str(a.get("label", ""))).as_dict(),
            "snapshot.list": self._list,
            "snapshot.delete": lambda a: self._engine().delete(int(a["id"])),
            "snapshot.rollback": lambda a: self._engine().rollback(int(a["id"]), bool(a.get("force"))),
            "snapshot.mount": self._mount,
            "snapshot.unmount": lambda a: self.app.backup.unmount(int(a["id"])),
            "snapshot.export": lambda a: self.app.backup.export(
                int(a["id"]), a.get("dest"), str(a.get("format", "vhd")),
                None if a.get("incremental_from") is None else int(a["incremental_from"])),
            "schedule.run": self._run_schedule,
            "clients": lambda a: self.app.clients_overview(),
            "client.forget": lambda a: self.app.forget_adopted(str(a["name"]), bool(a.get("delete_disk"))),
            "config.reload": lambda a: self.app.reload(),
            "config.edit": self._edit_config,
            "sessions": self._sessions,
        }

    def _engine(self) -> SnapshotEngine:
        return self.app.backup.engine

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
            return await self.call(request["op"], request.get("args") or {})
        except (ValueError, KeyError, TypeError, AttributeError):
            return {"ok": False, "error": f"bad request; operations: {', '.join(sorted(self._ops))}"}

    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """One operation, as the socket and the web dashboard ask for it: a reply, never an exception."""
        handler = self._ops.get(op)
        if handler is None or not isinstance(args, dict):
            return {"ok": False, "error": f"no operation {op!r}; operations: {', '.join(sorted(self._ops))}"}
        loop = asyncio.get_running_loop()
        try:
            if op in _ON_LOOP:
                result = handler(args)
            else:
                result = await loop.run_in_executor(None, handler, args)
        except (SnapshotError, MountError, StoreError, VhdFormatError, ConfigError, StartupError, OSError, KeyError,
                ValueError) as exc:
            log.info("admin %s failed: %s", op, exc)
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # the admin sees the failure, the server keeps running
            log.exception("admin %s failed", op)
            return {"ok": False, "error": f"internal error: {exc}"}
        return {"ok": True, "result": result}

    # ---- operations -------------------------------------------------------------------

    def _list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        disk = args.get("disk")
        if disk is not None:
            self._engine().volume(disk)
        rows = []
        exports: dict[int, list[dict[str, Any]]] = {}
        for export in self._engine().catalog.exports(disk=disk):
            exports.setdefault(export.snapshot, []).append(export.as_dict())
        for snap in self._engine().catalog.snapshots(disk):
            if snap.state == "creating":
                continue
            row = snap.as_dict()
            row["exports"] = exports.get(snap.id, [])
            if snap.mount_iscsi:
                row["iscsi_target"] = self.app.backup.mount_target_name(snap.id)
            rows.append(row)
        return rows

    def _edit_config(self, args: dict[str, Any]) -> dict[str, Any]:
        """Change the configuration file (comments kept), then apply it: what the wizards do."""
        message = edit_config(self.app.config.path, str(args["op"]), dict(args.get("args") or {}))
        return {"message": message, **self.app.reload()}

    def _sessions(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        registry = self.app.server.registry if self.app.server else None
        return [{"tsih": s.tsih, "initiator": s.initiator_name, "target": s.target_name or "(discovery)"}
                for s in (list(registry.sessions.values()) if registry else [])]

    def _mount(self, args: dict[str, Any]) -> dict[str, str]:
        snap_id = int(args["id"])
        if args.get("local"):
            return {"file": self.app.backup.mount_local(snap_id, Path(args["local"]))}
        return {"target": self.app.backup.mount_iscsi(snap_id)}

    def _run_schedule(self, args: dict[str, Any]) -> str:
        scheduler = self.app.backup.scheduler
        schedule = next((s for s in scheduler.schedules if s.name == args.get("name")), None) if scheduler else None
        if scheduler is None or schedule is None:
            raise SnapshotError(f"no schedule named {args.get('name')!r}")
        return scheduler.run(schedule)

    def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        app = self.app
        registry = app.server.registry if app.server else None
        sessions = list(registry.sessions.values()) if registry else []
        engine = self._engine()
        disks = []
        for name, volume in sorted(engine.volumes.items()):
            count, held = engine.usage(name)
            disks.append({"name": name, "path": str(volume.path), "size": volume.gate.size,
                          "sessions": volume.sessions(), "snapshots": count, "snapshot_bytes": held})
        images = []
        for image in app.config.images:
            try:
                size = read_footer(image.path).virtual_size
            except VhdFormatError:
                size = 0
            images.append({"name": image.name, "path": str(image.path), "size": size,
                           "clients": sorted(c.name for c in app.clients.values() if c.config.image == image.name)})
        return {"pid": os.getpid(), "uptime": time.time() - STARTED, "config": str(app.config.path), "images": images,
                "portals": [f"{h}:{p}" for h, p in app.bound], "sessions": len(sessions), "disks": disks,
                "schedules": app.backup.schedules(),
                "services": {"dhcp": app.config.dhcp.mode if app.dhcp else "off",
                             "tftp": ("running" if app.tftp.alive else f"failed: {app.tftp.failed}") if app.tftp
                             else "off", "dns": "running" if app.dns else "off"},
                "clients": {"total": len(app.clients),
                            "adopted": sum(1 for c in app.clients.values() if c.origin == "adopted"),
                            "disks_open": sum(1 for n in app.clients if not app.stores[f"client:{n}"].parked)},
                "mounts": [{"id": s.id, "disk": s.disk, "iscsi": s.mount_iscsi, "local": s.mount_local}
                           for s in engine.catalog.snapshots() if s.mount_iscsi or s.mount_local]}


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
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error", "no answer"))
    return reply.get("result")
