"""Snapshots of live VHD disks: take, delete (merge), roll back, open for reading.
(A disk on Ceph RBD has RBD snapshots instead: snapshots/rbdsnaps.py, called from here.)

A disk is a chain of VHD layers; the live file (the path in the configuration)
is always the top one. Taking a snapshot freezes the live layer under a new
name in `<disk>.snapshots/` and puts an empty differencing child in its place:

    hold I/O -> flush -> link live as snapshots/N.vhd -> child over N at live.new
    -> rename live.new over live -> reopen -> release I/O

The live path names a whole disk at every instant (the rename is atomic), so a
crash anywhere leaves either the old disk (the stray link is removed at start)
or the new chain. Deleting a snapshot copies its sectors into each child that
lacks them, points the children at its parent, then removes its file; each step
keeps every view unchanged and can be redone, so an interrupted delete resumes.
Finishing or undoing what a crash interrupted is snapshots/recovery.py; the steps
it redoes (merge_away, undo_create) are this engine's.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from snapshots import rbdsnaps
from snapshots.catalog import Catalog, Snapshot, SnapshotState, vhd_files
from snapshots.faults import crash_point
from snapshots.files import fsync_dir
from target.stores.base import BlockStore
from target.stores.gate import GatedStore
from target.stores.vhd import VhdFormatError, open_vhd
from target.stores.layered import LayeredStore
from target.stores.vhd.chain import copy_missing, detach, parent_uuid, relink
from target.stores.vhd.create import create_differencing
from target.stores.vhd.store import MAX_CHAIN, read_footer

log = logging.getLogger("bootsrv.snapshots")

MERGE_CHUNK = 4 << 20  # a merge into a live disk holds its I/O for one chunk at a time


class SnapshotError(Exception):
    """One line for the admin: what cannot be done and why."""


@dataclass(slots=True)
class Volume:
    """A disk as the engine sees it: its live file, the gate its initiators go through,
    and how to find and drop the sessions using it."""
    name: str
    path: Path
    gate: GatedStore
    sessions: Callable[[], int] = lambda: 0
    drop_sessions: Callable[[], None] = lambda: None


def snapshot_folder(live: Path) -> Path:
    return live.parent / f"{live.stem}.snapshots"


def fresh_path(live: Path) -> Path:
    """Where a new top layer is made before it is renamed over the live file."""
    return live.with_name(live.name + ".new")


def new_top(live: Path, parent: str | os.PathLike[str], crash_name: str) -> BlockStore:
    """Put an empty differencing child of `parent` at the live path, atomically; open it.
    Call with the disk's I/O held: the old top is then the caller's to close."""
    fresh = fresh_path(live)
    fresh.unlink(missing_ok=True)
    create_differencing(fresh, parent)
    crash_point(crash_name)
    os.replace(fresh, live)
    fsync_dir(live.parent)
    return open_vhd(live)


@dataclass
class SnapshotEngine:
    catalog: Catalog
    volumes: dict[str, Volume] = field(default_factory=dict)
    views: dict[int, GatedStore] = field(default_factory=dict)  # opened snapshots (mounts)
    stopping: threading.Event = field(default_factory=threading.Event)  # long loops give up: the server stops
    _busy: dict[int, int] = field(default_factory=dict)  # snapshots being read by an export
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)  # (operation, ok|failed) -> count
    # A snapshot freezes the disk's blocks: every later write takes new space. Below this
    # much free space on the disk's file system a snapshot is refused, before anything changes.
    min_free: int = 0
    _locks: dict[str, threading.RLock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def add_volume(self, volume: Volume) -> None:
        self.volumes[volume.name] = volume

    def remove_volume(self, name: str) -> None:
        """The disk is no longer served; its files and its snapshots' stay."""
        self.volumes.pop(name, None)

    def lock(self, disk: str) -> threading.RLock:
        """One operation at a time per disk (schedules and the admin API share it)."""
        with self._locks_guard:
            return self._locks.setdefault(disk, threading.RLock())

    def volume(self, disk: str) -> Volume:
        volume = self.volumes.get(disk)
        if volume is None:
            known = ", ".join(sorted(self.volumes)) or "none"
            raise SnapshotError(f"no disk or client named {disk!r} (known: {known})")
        return volume

    @contextmanager
    def counted(self, operation: str) -> Iterator[None]:
        """Count how an operation ended (for monitoring)."""
        try:
            yield
        except BaseException:
            key = (operation, "failed")
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
            raise
        key = (operation, "ok")
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def check_stopping(self) -> None:
        if self.stopping.is_set():
            raise SnapshotError("the server is stopping; the operation is finished or undone at the next start")

    @contextmanager
    def reading(self, snap_id: int) -> Iterator[Snapshot]:
        """Keep a snapshot from being deleted while it is read (an export), without
        holding the disk's lock: snapshots of the disk can still be taken meanwhile."""
        with self._locks_guard:
            snap = self.snapshot(snap_id)
            self._busy[snap_id] = self._busy.get(snap_id, 0) + 1
        try:
            yield snap
        finally:
            with self._locks_guard:
                self._busy[snap_id] -= 1
                if not self._busy[snap_id]:
                    del self._busy[snap_id]

    def snapshot(self, snap_id: int) -> Snapshot:
        snap = self.catalog.get(snap_id)
        if snap is None or snap.state == SnapshotState.CREATING:
            raise SnapshotError(f"no snapshot {snap_id}")
        return snap

    # ---- take ---------------------------------------------------------------------

    def create(self, disk: str, label: str = "", origin: str = "manual") -> Snapshot:
        with self.counted("create"):
            return self._create(disk, label, origin)

    def _create(self, disk: str, label: str, origin: str) -> Snapshot:
        volume = self.volume(disk)
        with self.lock(disk):
            live = volume.path
            if volume.gate.readonly:
                raise SnapshotError(f"disk {disk!r} is served read-only: its content cannot change, "
                                    f"back up {live} itself")
            if rbdsnaps.is_rbd(live):
                return rbdsnaps.create(self, volume, label, origin)
            try:
                read_footer(live)
            except VhdFormatError:
                raise SnapshotError(f"disk {disk!r} ({live}) is a raw image: snapshots need a VHD disk "
                                    f"(bootsrv disk convert {live} {live.with_suffix('.vhd')})") from None
            free = shutil.disk_usage(live.parent).free
            if free < self.min_free:
                raise SnapshotError(f"snapshot of {disk!r} refused: {free / (1 << 30):.2f} GiB free on the file "
                                    f"system of {live}, below snapshots.min_free ({self.min_free / (1 << 30):.2f} GiB)")
            depth = len(volume.gate.layers())
            if depth >= MAX_CHAIN - 1:
                raise SnapshotError(f"disk {disk!r} already has {depth} layers (at most {MAX_CHAIN}): "
                                    "delete older snapshots first")
            folder = snapshot_folder(live)
            folder.mkdir(exist_ok=True)
            snap = self.catalog.begin_snapshot(disk, label, origin, vhd_files(folder))
            frozen = Path(snap.file)
            try:
                with volume.gate.hold() as store:
                    store.flush()
                    crash_point("snapshot.create.flushed")
                    os.link(live, frozen)
                    fsync_dir(folder)
                    crash_point("snapshot.create.linked")
                    fresh = new_top(live, frozen, "snapshot.create.child")
                    crash_point("snapshot.create.switched")
                    old = volume.gate.swap(fresh)
            except BaseException:
                self.undo_create(snap, live)
                raise
            pause_ms = volume.gate.last_hold_seconds * 1000
            # The old top store is the frozen layer: what it holds is known without reopening it.
            below = old.parent.path if old.parent is not None else None
            unique, uuid = old.held_bytes(), old.uuid
            old.close()
            if below is not None:  # the frozen layer moved folders: its relative locator is redone
                relink(frozen, below)
            self.catalog.update(snap.id, state=SnapshotState.READY, uuid=uuid.hex(), unique_bytes=unique, pause_ms=pause_ms)
            log.info("snapshot %d of %s taken (%s): writes held %.1f ms, %d bytes in the frozen layer",
                     snap.id, disk, origin, pause_ms, unique)
            return self.snapshot(snap.id)

    def undo_create(self, snap: Snapshot, live: Path) -> None:
        frozen = Path(snap.file)
        fresh_path(live).unlink(missing_ok=True)
        if frozen.exists() and live.exists() and os.path.samefile(frozen, live):
            frozen.unlink()
        if not frozen.exists():
            self.catalog.remove(snap.id)

    @staticmethod
    def layer_bytes(path: Path) -> int:
        store = open_vhd(path, readonly=True)
        try:
            return store.held_bytes()
        finally:
            store.close()

    def usage(self, disk: str) -> tuple[int, int]:
        """(snapshots kept, bytes their layers hold) of a disk."""
        snaps = [s for s in self.catalog.snapshots(disk) if s.state == SnapshotState.READY]
        return len(snaps), sum(s.unique_bytes for s in snaps)

    # ---- delete = merge into the children -----------------------------------------

    def delete(self, snap_id: int) -> None:
        with self.counted("delete"):
            self._delete(snap_id)

    def _delete(self, snap_id: int) -> None:
        snap = self.snapshot(snap_id)
        with self.lock(snap.disk):
            snap = self.snapshot(snap_id)
            if snap.mount_iscsi or snap.mount_local:
                raise SnapshotError(f"snapshot {snap_id} is mounted; unmount it first (bootsrv snapshot unmount {snap_id})")
            on_rbd = rbdsnaps.is_rbd(snap.file)
            if on_rbd:
                rbdsnaps.refuse_delete(snap)
            with self._locks_guard:
                if snap_id in self._busy:
                    raise SnapshotError(f"snapshot {snap_id} is being exported; delete it when that is done")
                self.catalog.update(snap_id, state=SnapshotState.DELETING)
            crash_point("snapshot.delete.marked")
            if on_rbd:
                rbdsnaps.delete(self, snap)
            else:
                self.merge_away(snap)

    def _children(self, snap: Snapshot) -> list[Path]:
        """Layers whose parent is this snapshot, read from the files (a crash may have
        relinked some already: those are no longer children and are not redone)."""
        uuid = bytes.fromhex(snap.uuid)
        found = [Path(other.file) for other in self.catalog.snapshots(snap.disk)
                 if other.id != snap.id and other.state != SnapshotState.CREATING and Path(other.file).exists()
                 and parent_uuid(other.file) == uuid]
        live = self.volume(snap.disk).path
        if parent_uuid(live) == uuid:
            found.append(live)
        return found

    def merge_away(self, snap: Snapshot) -> None:
        volume = self.volume(snap.disk)
        frozen = Path(snap.file)
        if not frozen.exists():  # interrupted after its file went: only the catalog is behind
            self.catalog.remove(snap.id)
            return
        source = open_vhd(frozen, readonly=True)
        try:
            below = source.parent.path if source.parent is not None else None
            children = self._children(snap)
            grown = {str(child) for child in children}
            for child in children:
                if child == volume.path:
                    self._merge_into_live(source, volume, below)
                else:
                    target = open_vhd(child)
                    try:
                        for offset in range(0, source.size, MERGE_CHUNK):
                            self.check_stopping()
                            if copy_missing(source, target, offset, min(MERGE_CHUNK, source.size - offset)):
                                crash_point("snapshot.delete.merging")
                        target.flush()
                    finally:
                        target.close()
                    crash_point("snapshot.delete.merged")
                    _point_at(child, below)
                crash_point("snapshot.delete.relinked")
        finally:
            source.close()
        self._reopen_views(snap.disk, live=volume.path not in children)
        frozen.unlink(missing_ok=True)
        fsync_dir(frozen.parent)
        crash_point("snapshot.delete.unlinked")
        self.catalog.remove(snap.id)
        for other in self.catalog.snapshots(snap.disk):  # only the layers that took the data in changed
            if str(other.file) in grown and Path(other.file).exists():
                self.catalog.update(other.id, unique_bytes=self.layer_bytes(Path(other.file)))
        log.info("snapshot %d of %s deleted (merged into its children)", snap.id, snap.disk)

    def _merge_into_live(self, source: LayeredStore, volume: Volume, below: str | None) -> None:
        for offset in range(0, source.size, MERGE_CHUNK):
            self.check_stopping()
            length = min(MERGE_CHUNK, source.size - offset)
            if not any(present for _, _, present in source.own_runs(offset, length)):
                continue
            with volume.gate.hold() as store:  # the initiator's writes wait for this chunk only
                copied = copy_missing(source, store, offset, length)
            if copied:
                crash_point("snapshot.delete.merging")
        crash_point("snapshot.delete.merged")
        volume.gate.reopen(partial(open_vhd, volume.path), before_open=partial(_point_at, volume.path, below))

    def _reopen_views(self, disk: str, *, live: bool) -> None:
        """Stores that read through a deleted layer reopen without it (its space is freed);
        `live=False` when the merge into the live disk reopened it already."""
        if live:
            volume = self.volume(disk)
            volume.gate.reopen(partial(open_vhd, volume.path))
        for snap_id, gate in list(self.views.items()):
            snap = self.catalog.get(snap_id)
            if snap is not None and snap.disk == disk:
                gate.reopen(partial(open_vhd, snap.file, readonly=True))

    # ---- roll back ------------------------------------------------------------------

    def rollback(self, snap_id: int, force: bool = False) -> None:
        with self.counted("rollback"):
            self._rollback(snap_id, force)

    def _rollback(self, snap_id: int, force: bool) -> None:
        snap = self.snapshot(snap_id)
        volume = self.volume(snap.disk)
        with self.lock(snap.disk):
            sessions = volume.sessions()
            if sessions and not force:
                raise SnapshotError(f"disk {snap.disk!r} is in use by {sessions} iSCSI session(s): disconnect "
                                    "the client first, or add --force to drop its sessions")
            if sessions:
                volume.drop_sessions()
            if rbdsnaps.is_rbd(snap.file):
                rbdsnaps.rollback(self, volume, snap)
            else:
                self._start_over(volume, snap.file, "snapshot.rollback.child")
            log.warning("disk %s rolled back to snapshot %d (%s); %d session(s) dropped", snap.disk, snap_id,
                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap.created)), sessions)

    def restart_from(self, disk: str, base: Path) -> bool:
        """The disk starts again as an empty layer over `base` (a classroom machine's reset at boot).
        Never waits: False if another operation on the disk is under way."""
        busy = self.lock(disk)
        if not busy.acquire(blocking=False):
            return False
        try:
            self._start_over(self.volume(disk), base, "disk.reset.child")
        finally:
            busy.release()
        return True

    def start_over(self, disk: str, base: str | os.PathLike[str], crash_name: str) -> None:
        """As restart_from, for a caller that holds the disk's lock (it waited for it)."""
        self._start_over(self.volume(disk), base, crash_name)

    @staticmethod
    def _start_over(volume: Volume, base: str | os.PathLike[str], crash_name: str) -> None:
        if rbdsnaps.is_rbd(volume.path):
            rbdsnaps.start_over(volume, os.fspath(base), crash_name)
            return
        with volume.gate.hold():
            old = volume.gate.swap(new_top(volume.path, base, crash_name))
        old.close()

    # ---- reading a snapshot ------------------------------------------------------------

    @staticmethod
    def open_point(snap: Snapshot) -> LayeredStore:
        """The snapshot's point-in-time disk, read-only, opened afresh (the caller closes it)."""
        return rbdsnaps.open_point(snap) if rbdsnaps.is_rbd(snap.file) else open_vhd(snap.file, readonly=True)

    def open_view(self, snap_id: int) -> GatedStore:
        """The snapshot's point-in-time disk, read-only; kept current across deletes."""
        snap = self.snapshot(snap_id)
        gate = self.views.get(snap_id)
        if gate is None:
            gate = self.views[snap_id] = GatedStore(self.open_point(snap))
        return gate

    def close_view(self, snap_id: int) -> None:
        gate = self.views.pop(snap_id, None)
        if gate is not None:
            gate.close()

    # ---- recovery after a crash (snapshots/recovery.py) --------------------------------

    def recover(self) -> list[str]:
        """Finish or undo what a killed process left half done. Returns what was done."""
        from snapshots.recovery import recover  # it drives this engine's own steps
        return recover(self)


def _point_at(child: Path, parent: str | None) -> None:
    """The child's new parent is the deleted layer's parent, or it stands alone."""
    if parent is not None:
        relink(child, parent)
    else:
        detach(child)
