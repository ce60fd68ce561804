"""The backup half of the appliance: the snapshot engine, its schedules, and
snapshots mounted as read-only iSCSI targets or local files. Wiring only: the
engine, exports and schedules live in the `snapshots` library."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bootsrv.config import Config
from bootsrv.naming import snapshot_mount_iqn
from snapshots.catalog import Catalog
from snapshots.engine import SnapshotEngine, SnapshotError, Volume
from snapshots.export import export_snapshot
from snapshots.fuse import FuseImage
from snapshots.localmount import IMAGE_NAME, LocalMount, MountError, unmount
from snapshots.schedule import Leader, SnapshotScheduler, WakeFirst
from target.iscsi.chap import Credentials
from target.iscsi.session import SessionRegistry
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.stores.gate import GatedStore

log = logging.getLogger("bootsrv.backup")


@dataclass(frozen=True, slots=True)
class Access:
    """Who may attach a disk (and so its mounted snapshots): None = any initiator."""
    targets: tuple[str, ...]
    initiators: frozenset[str] | None
    chap: Credentials | None


@dataclass
class BackupService:
    config: Config
    directory: TargetDirectory
    registry: Callable[[], SessionRegistry | None]
    engine: SnapshotEngine = field(init=False)
    scheduler: SnapshotScheduler | None = None
    loop: asyncio.AbstractEventLoop | None = None
    access: dict[str, Access] = field(default_factory=dict)
    local_mounts: dict[int, LocalMount] = field(default_factory=dict)
    leader: Leader | None = None  # several nodes on one Ceph cluster: who snapshots the RBD disks
    wake_first: WakeFirst | None = None  # schedules with `wake`: the appliance wakes their clients (bootsrv.wake)

    def __post_init__(self) -> None:
        self.engine = SnapshotEngine(Catalog(self.config.server.state_dir / "snapshots.sqlite"),
                                     min_free=self.config.snapshots.min_free)

    def add_disk(self, name: str, path: Path, gate: GatedStore, access: Access) -> None:
        self.access[name] = access
        self.engine.add_volume(Volume(name, path, gate, sessions=lambda: self._sessions(access.targets),
                                      drop_sessions=lambda: self._drop(access.targets)))

    def remove_disk(self, name: str) -> None:
        """The disk is no longer served (its files and snapshots stay)."""
        self.access.pop(name, None)
        self.engine.remove_volume(name)

    def _sessions(self, targets: tuple[str, ...]) -> int:
        registry = self.registry()
        if registry is None:
            return 0
        return sum(1 for s in list(registry.sessions.values()) if s.target_name in targets)

    def _drop(self, targets: tuple[str, ...]) -> None:
        registry = self.registry()
        if registry is None:
            return

        def drop() -> None:
            for target in targets:
                registry.drop_target(target)

        self.on_loop(drop, timeout=10)  # sessions belong to the event loop

    def on_loop(self, work: Callable[[], None], *, timeout: float) -> None:
        """Run `work` on the event loop from a worker thread, and wait for it (nothing to do
        before the loop runs: no sessions yet)."""
        loop = self.loop
        if loop is None:
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                work()
                done.set_result(None)
            except Exception as exc:  # the waiting thread raises it
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        done.result(timeout=timeout)

    def start(self) -> None:
        """Before the portals open: finish interrupted work, bring back mounts, start schedules."""
        self.engine.recover()
        for snap in self.engine.catalog.snapshots():
            if snap.disk not in self.engine.volumes or snap.state != "ready":
                continue
            try:
                if snap.mount_iscsi:
                    self.mount_iscsi(snap.id)
                if snap.mount_local:
                    unmount_quietly(Path(snap.mount_local))  # a mount left by a killed process is dead
                    self.mount_local(snap.id, Path(snap.mount_local))
            except (SnapshotError, MountError) as exc:
                log.error("snapshot %d: cannot restore its mount: %s", snap.id, exc)
        self.start_schedules()

    def start_schedules(self) -> None:
        """(Again, after a reload: a job already running finishes in the old scheduler.)"""
        if self.scheduler is not None:
            self.scheduler.stop(wait=False)
            self.scheduler = None
        if self.config.snapshots.schedules:
            self.scheduler = SnapshotScheduler(self.engine, self.config.snapshots.schedules,
                                               self.config.snapshots.export_dir, leader=self.leader,
                                               wake_first=self.wake_first)
            self.scheduler.start()

    def stop(self) -> None:
        self.engine.stopping.set()  # merges and exports under way give up (and resume or undo at start)
        if self.scheduler is not None:
            self.scheduler.stop()
        for folder in [m.folder for m in self.local_mounts.values()]:
            unmount_quietly(folder)

    def close(self) -> None:
        """After the sessions are gone: the mounted snapshots' files are closed."""
        for snap_id in list(self.engine.views):
            self.engine.close_view(snap_id)
        self.engine.catalog.close()

    # ---- mounts -----------------------------------------------------------------------

    def mount_target_name(self, snap_id: int) -> str:
        disk = self.engine.snapshot(snap_id).disk
        return snapshot_mount_iqn(self.config.iscsi.base_iqn, disk, snap_id)

    def mount_iscsi(self, snap_id: int) -> str:
        snap = self.engine.snapshot(snap_id)
        access = self.access[snap.disk]
        extra = frozenset(self.config.snapshots.initiators)
        if access.initiators is None:
            initiators: frozenset[str] = frozenset()  # the disk itself is open to any initiator
        elif access.initiators | extra:
            initiators = access.initiators | extra
        else:
            raise SnapshotError(f"no initiator may attach disk {snap.disk!r}: list backup hosts in "
                                "snapshots.initiators")
        name = self.mount_target_name(snap_id)
        unit = LogicalUnit(f"snapshot:{snap_id}", self.engine.open_view(snap_id), target_name=name, readonly=True)
        self.directory.add(TargetSpec(name=name, device=ScsiDevice([unit]), alias=f"{snap.disk} snapshot {snap_id}",
                                      initiators=initiators, chap=access.chap))
        self.engine.catalog.update(snap_id, mount_iscsi=1)
        log.info("snapshot %d of %s mounted read-only as iSCSI target %s", snap_id, snap.disk, name)
        return name

    def mount_local(self, snap_id: int, folder: Path) -> str:
        snap = self.engine.snapshot(snap_id)
        if snap_id in self.local_mounts:
            raise SnapshotError(f"snapshot {snap_id} is already mounted at {self.local_mounts[snap_id].folder}")
        view = self.engine.open_view(snap_id)
        mount = LocalMount(folder.resolve(), FuseImage(IMAGE_NAME, view.size, view.read, snap.created))
        mount.start()
        self.local_mounts[snap_id] = mount
        self.engine.catalog.update(snap_id, mount_local=str(mount.folder))
        log.info("snapshot %d of %s mounted read-only at %s", snap_id, snap.disk, mount.folder / IMAGE_NAME)
        return str(mount.folder / IMAGE_NAME)

    def unmount(self, snap_id: int) -> list[str]:
        snap = self.engine.snapshot(snap_id)
        done = []
        mount = self.local_mounts.get(snap_id)
        if mount is not None:
            mount.stop()
            del self.local_mounts[snap_id]
            done.append(str(mount.folder))
        self.engine.catalog.update(snap_id, mount_local="")
        if snap.mount_iscsi:
            name = self.mount_target_name(snap_id)
            self.directory.remove(name)
            self._drop((name,))
            done.append(name)
            self.engine.catalog.update(snap_id, mount_iscsi=0)
        self.engine.close_view(snap_id)
        if not done:
            raise SnapshotError(f"snapshot {snap_id} is not mounted")
        return done

    # ---- what the admin API offers ---------------------------------------------------------

    def export(self, snap_id: int, dest: str | None, fmt: str, incremental_from: int | None) -> dict[str, Any]:
        """To `dest`, or (the dashboard's button) to snapshots.export_dir/<disk>."""
        if not dest:
            if self.config.snapshots.export_dir is None:
                raise SnapshotError("no destination given and snapshots.export_dir is not set")
            dest = str(self.config.snapshots.export_dir / self.engine.snapshot(snap_id).disk)
        return export_snapshot(self.engine, snap_id, Path(dest), fmt, incremental_from).as_dict()

    def schedules(self) -> list[dict[str, Any]]:
        return self.scheduler.describe() if self.scheduler else []


def unmount_quietly(folder: Path) -> None:
    try:
        unmount(folder, lazy=True)
    except MountError:
        pass
