"""Clients adopted by DHCP (`dhcp.unknown_clients = IMAGE`): one JSON file in the
state directory, so they outlive restarts, `client list` shows them and
`client remove` / `client keep` work on them with or without a running server.

The file is replaced whole (write, fsync, rename, fsync the folder): a crash
leaves the old list or the new one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bootsrv.naming import client_disk_path
from target.stores.registry import remove_store
from target.stores.base import fsync_dir

_WRITING = threading.Lock()  # adoptions run on worker threads: one read-modify-replace at a time


@dataclass(frozen=True, slots=True)
class AdoptedClient:
    name: str
    mac: str
    image: str
    adopted: float  # when (Unix time)
    cause: str = ""  # the DHCP message that brought it


def registry_path(state_dir: Path) -> Path:
    return state_dir / "adopted.json"


def load(state_dir: Path) -> list[AdoptedClient]:
    try:
        rows = json.loads(registry_path(state_dir).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise OSError(f"{registry_path(state_dir)}: unreadable list of adopted clients: {exc}") from None
    return [AdoptedClient(**row) for row in rows]


def save(state_dir: Path, clients: list[AdoptedClient]) -> None:
    path = registry_path(state_dir)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as out:
        json.dump([asdict(c) for c in clients], out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    fsync_dir(path.parent)


def add(state_dir: Path, name: str, mac: str, image: str, cause: str) -> AdoptedClient:
    with _WRITING:
        clients = [c for c in load(state_dir) if c.name != name]
        client = AdoptedClient(name, mac, image, time.time(), cause)
        save(state_dir, clients + [client])
        return client


def remove(state_dir: Path, name: str) -> AdoptedClient | None:
    with _WRITING:
        clients = load(state_dir)
        found = next((c for c in clients if c.name == name), None)
        if found is not None:
            save(state_dir, [c for c in clients if c.name != name])
        return found


def dispose_disk(state_dir: Path, name: str, delete: bool, image: Path | None = None) -> str:
    """After an adopted client is forgotten: delete its disk (over `image`) if asked; says what happened."""
    disk = client_disk_path(state_dir, name, image)
    if delete:
        remove_store(disk)
        return f"adopted client {name} removed, disk {disk} deleted"
    return f"adopted client {name} removed (disk {disk} kept)"
