"""What the appliance serves: disks (stores), targets, logical units and boot clients.

Invariants: every client in `clients` has a store under its `store_key`, a unit in `units`,
a target in the directory, a volume in the snapshot engine, and its MAC in `by_mac`; every
configured disk has a store and a volume. Only the methods here add or remove them: the DHCP
policy reads `by_mac` (the same dict), nobody else edits it. Removing closes the files; disk
files and snapshots stay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bootsrv import naming
from bootsrv.backup import Access, BackupService
from bootsrv.clients import BootClient
from bootsrv.config import Config, DiskConfig, TargetConfig
from bootsrv.runtime.disks import open_client_disk, open_disk
from target.iscsi.chap import Credentials
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.scsi.reservations import Reservations
from target.stores.base import BlockStore, StoreError
from target.stores.gate import GatedStore
from target.stores.registry import open_store

log = logging.getLogger("bootsrv")


@dataclass(slots=True)
class Inventory:
    config: Config
    directory: TargetDirectory
    backup: BackupService
    drop_sessions: Callable[[str], None]  # a target's sessions end (on the event loop)
    stores: dict[str, GatedStore] = field(default_factory=dict)  # disk name or client store_key
    units: dict[str, LogicalUnit] = field(default_factory=dict)  # client name -> its unit
    clients: dict[str, BootClient] = field(default_factory=dict)  # configured and adopted, by name
    by_mac: dict[str, BootClient] = field(default_factory=dict)  # the same clients, by MAC
    # What a new client disk is made over: its image's current version (bootsrv.imaging).
    base_of: Callable[[BootClient], Path] = lambda client: client.image_path

    # ---- disks and targets ------------------------------------------------------------------

    def add_disk(self, disk: DiskConfig) -> None:
        self.stores[disk.name] = GatedStore(open_disk(self.config, disk))
        self.disk_access(disk.name)

    def remove_disk(self, name: str) -> None:
        self.backup.remove_disk(name)
        self.stores.pop(name).close()

    def extend_disk(self, name: str, size: int, grow: Callable[[Path, int], object]) -> None:
        """Grow a served [[disk]] while initiators use it (from a worker thread). Its I/O
        waits while the file is flushed, closed, grown by `grow` (the offline steps, each of
        which leaves the old or the new size after a crash) and opened again; READ CAPACITY
        answers the new size from then on. Snapshot operations on the disk wait too."""
        disk = self.config.disk(name)
        if disk.readonly:
            raise StoreError(f"disk {name} is read-only")
        self._extend(name, self.stores[name], disk.path, size, grow, lambda: open_disk(self.config, disk))

    def extend_client(self, name: str, size: int, grow: Callable[[Path, int], object]) -> None:
        """The same for a client's own disk (past its image's end it reads zeros)."""
        client = self.clients[name]
        self._extend(name, self.stores[client.store_key], client.disk_path, size, grow,
                     lambda: open_store(client.disk_path))

    def _extend(self, volume: str, gate: GatedStore, path: Path, size: int, grow: Callable[[Path, int], object],
                reopen: Callable[[], BlockStore]) -> None:
        with self.backup.engine.lock(volume), gate.hold() as store:
            store.flush()
            store.close()
            try:
                grow(path, size)
            finally:  # grown or not, the disk is served again
                gate.swap(reopen())

    def disk_access(self, name: str) -> None:
        """Who may attach the disk's mounted snapshots follows the targets serving it."""
        serving = [t for t in self.config.targets if name in t.luns]
        anyone = any(not t.initiators for t in serving)
        chap = next((t.chap for t in serving if t.chap), None)
        self.backup.add_disk(name, self.config.disk(name).path, self.stores[name], Access(
            tuple(t.iqn for t in serving),
            None if anyone else frozenset(i for t in serving for i in t.initiators),
            Credentials(chap.user, chap.secret) if chap else None))

    def add_target(self, target: TargetConfig) -> None:
        units = [self._unit(target.iqn, name) for name in target.luns]
        self.directory.add(TargetSpec(
            name=target.iqn, device=ScsiDevice(units), alias=target.alias,
            initiators=frozenset(target.initiators),
            chap=Credentials(target.chap.user, target.chap.secret) if target.chap else None,
            mutual_chap=(Credentials(target.mutual_chap.user, target.mutual_chap.secret)
                         if target.mutual_chap else None)))

    def remove_target(self, iqn: str) -> None:
        self.drop_sessions(iqn)
        self.directory.remove(iqn)

    def _unit(self, target_iqn: str, disk_name: str) -> LogicalUnit:
        return LogicalUnit(disk_name, self.stores[disk_name], target_name=target_iqn,
                           readonly=self.config.disk(disk_name).readonly,
                           reservations=self._reservations(
                               naming.disk_reservations(self.config.server.state_dir, target_iqn, disk_name)))

    @staticmethod
    def _reservations(path: Path) -> Reservations:
        # Persistent reservations (with APTPL) outlive restarts: one file per target and disk.
        reservations = Reservations(path=path)
        reservations.load()
        return reservations

    # ---- clients ----------------------------------------------------------------------------

    def add_client(self, client: BootClient, store: BlockStore | None = None) -> None:
        gate = self.stores[client.store_key] = GatedStore(
            store or open_client_disk(self.config, client, self.base_of(client)))
        chap = Credentials(client.config.chap.user, client.config.chap.secret) if client.config.chap else None
        unit = self.units[client.name] = LogicalUnit(
            client.store_key, gate, target_name=client.target_iqn,
            reservations=self._reservations(naming.client_reservations(self.config.server.state_dir, client.name)))
        self.directory.add(TargetSpec(
            name=client.target_iqn,
            device=ScsiDevice([unit]),
            alias=f"{client.name} boot disk",
            initiators=frozenset({client.initiator_iqn}),
            chap=chap))
        self.backup.add_disk(client.name, client.disk_path, gate,
                             Access((client.target_iqn,), frozenset({client.initiator_iqn}), chap))
        self.clients[client.name] = client
        self.by_mac[client.config.mac] = client

    def remove_client(self, name: str) -> None:
        client = self.clients.pop(name)
        self.by_mac.pop(client.config.mac, None)
        self.remove_target(client.target_iqn)
        self.backup.remove_disk(name)
        self.units.pop(name, None)
        self.stores.pop(client.store_key).close()  # its disk file and snapshots stay

    def serve_layer(self, name: str, layer: GatedStore | None) -> None:
        """The client's target serves `layer` (an image's edit) instead of its own disk, or its
        own disk again (None). Its own disk, volume and snapshots are left as they are."""
        unit = self.units.get(name)
        if unit is not None:
            unit.store = layer if layer is not None else self.stores[self.clients[name].store_key]

    def park(self, client: BootClient) -> bool:
        """Close a client's disk files (flushed first); its next I/O opens them again.
        Never in the middle of a snapshot operation on the disk (a merge works on its layers)."""
        gate = self.stores.get(client.store_key)
        if gate is None:
            return False
        busy = self.backup.engine.lock(client.name)
        if not busy.acquire(blocking=False):
            return False
        try:
            return gate.park(lambda: open_store(client.disk_path))
        finally:
            busy.release()

    def close(self) -> None:
        for name, store in self.stores.items():
            try:
                store.flush()
            except StoreError as exc:
                log.error("flushing %s at shutdown: %s", name, exc)
            store.close()
