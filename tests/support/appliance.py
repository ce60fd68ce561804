"""A small served configuration for the unit tests of the runtime and the operations:
two disks with a target each, two clients over one image, real files under tmp_path."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from bootsrv.backup import BackupService
from bootsrv.clients import boot_clients
from bootsrv.config import DEFAULT_BASE_IQN, Config, load_config
from bootsrv.runtime.appliance import Appliance
from bootsrv.runtime.inventory import Inventory
from target.iscsi.targets import TargetDirectory
from target.stores.vhd.create import create_dynamic

BASE = """
[server]
state_dir = "state"
[iscsi]
portals = ["127.0.0.1:3260"]
[[image]]
name = "golden"
path = "golden.vhd"
[[disk]]
name = "scratch"
path = "scratch.img"
size = "1GiB"
[[disk]]
name = "other"
path = "other.img"
size = "1GiB"
[[target]]
iqn = "iqn.2026-11.lan.bootsrv:scratch"
luns = ["scratch"]
[[target]]
iqn = "iqn.2026-11.lan.bootsrv:other"
luns = ["other"]
[[client]]
name = "ws01"
mac = "52:54:00:12:34:56"
image = "golden"
[[client]]
name = "ws02"
mac = "52:54:00:12:34:57"
image = "golden"
"""


def config(tmp_path: Path, text: str, name: str = "c.toml") -> Config:
    (tmp_path / "golden.vhd").touch()
    path = tmp_path / name
    path.write_text(text)
    return load_config(path)


BASE_IQN = DEFAULT_BASE_IQN  # what BASE serves under (it sets no server.base_iqn)


def serving(tmp_path: Path) -> tuple[Config, Inventory, list[str]]:
    """The configuration BASE, its inventory built as the appliance builds it, and the
    targets whose sessions it dropped."""
    old = config(tmp_path, BASE)
    _golden(tmp_path)
    old.server.state_dir.mkdir(parents=True, exist_ok=True)
    directory, dropped = TargetDirectory(), list[str]()
    inventory = Inventory(old, directory, BackupService(old, directory, lambda: None), dropped.append)
    for disk in old.disks:
        inventory.add_disk(disk)
    for client in boot_clients(old):
        inventory.add_client(client)
    for target in old.targets:
        inventory.add_target(target)
    return old, inventory, dropped


def _golden(tmp_path: Path) -> None:
    """A real (empty) 1 MiB image in place of the placeholder `config` leaves."""
    (tmp_path / "golden.vhd").unlink()
    create_dynamic(tmp_path / "golden.vhd", 1 << 20)


@contextlib.contextmanager
def opened_appliance(tmp_path: Path, text: str = BASE) -> Iterator[Appliance]:
    """An appliance whose disks are open but whose services are not started."""
    app = Appliance(config(tmp_path, text))
    _golden(tmp_path)
    app.open_disks()
    try:
        yield app
    finally:
        app.inventory.close()
        app.backup.close()
