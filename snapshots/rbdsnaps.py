"""Snapshots of live disks on Ceph RBD (`[[disk]] path = "rbd:POOL/IMAGE"`): the engine's
take, delete, roll back and recovery steps when the disk is an RBD image.

A snapshot is an RBD snapshot of the image, named `bootsrv-snap-<id>-<UTC time>` (golden-image
versions are `v<N>`: never the same name), recorded in the catalog as rbd:POOL/IMAGE@NAME.

- take: writes held at the gate, flush, `rbd snap create` (librbd forwards it to the handle
  that serves the image, which holds its exclusive lock), writes let go, then protected (an
  admin's `rbd snap rm` is refused; a restore clone may be made of it). Crash consistent: the
  image holds every acknowledged write and none that came after.
- delete: unprotect and remove: no merge. Refused, with their names, while clones exist.
- roll back: `rbd snap rollback`, not a new clone: the disk keeps its name and its later
  snapshots (as a VHD rollback keeps them), and nothing depends on the snapshot afterwards. It
  needs the image's exclusive lock, so it runs under the gate's hold with the serving handle
  closed, and opens it again after. It rewrites every object: it takes time in proportion to
  the image's size, while the client (whose sessions are dropped) waits.
- usage: a snapshot's bytes are what `rbd du` shows for it (objects written between the
  image's previous snapshot and it, the clone's parent not counted).
- snapshots.min_free (space on a local file system) does not apply: the cluster's space is
  Ceph's to watch (`ceph df`, pool quotas).

Crash safety is the catalog's state per record, as for VHD; recovery (snapshots/recovery.py)
calls `recover` here: CREATING is finished if the RBD snapshot exists, else dropped; DELETING
is removed again; ROLLING_BACK is rolled back again (a rollback cut short leaves a mix of
both points in time, so it must complete before the disk is served).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Iterator

from snapshots.catalog import Snapshot, SnapshotState
from snapshots.faults import crash_point
from target.stores import rbd as rbd_store
from target.stores.errors import StoreError
from target.stores.rbd import images, is_rbd, snaps
from target.stores.registry import open_store

if TYPE_CHECKING:
    from snapshots.engine import SnapshotEngine, Volume

log = logging.getLogger("bootsrv.snapshots")

PREFIX = "bootsrv-snap-"
SCHEME = "rbd:"


def image_of(path: object) -> str:
    """rbd:POOL/IMAGE[@SNAP] -> POOL/IMAGE."""
    pool, image, _ = rbd_store.split(str(path)[len(SCHEME):])
    return images.spec(pool, image)


def snapshot_file(path: object, snap_id: int, created: float) -> str:
    """What the catalog records for snapshot `snap_id` of the disk at `path`: rbd:POOL/IMAGE@NAME.
    The time makes names from two catalogs (two nodes that served the disk) differ."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created))
    return f"{SCHEME}{image_of(path)}@{PREFIX}{snap_id}-{stamp}"


def rbd_name(snap: Snapshot) -> str:
    """The snapshot's name in the cluster (as `rbd snap ls` shows it)."""
    return snap.file.rpartition("@")[2]


def locator(snap: Snapshot) -> str:
    """POOL/IMAGE@NAME: as RbdStore and images.py take it."""
    return snap.file[len(SCHEME):]


def open_point(snap: Snapshot) -> rbd_store.RbdStore:
    """The snapshot's disk, read-only."""
    return rbd_store.RbdStore(locator(snap), readonly=True)


def exists(snap: Snapshot) -> bool:
    return images.exists(locator(snap))


# ---- take ---------------------------------------------------------------------------------

def create(engine: SnapshotEngine, volume: Volume, label: str, origin: str) -> Snapshot:
    from snapshots.engine import SnapshotError
    snap = engine.catalog.begin_snapshot(volume.name, label, origin,
                                         lambda snap_id, created: snapshot_file(volume.path, snap_id, created))
    if exists(snap):  # never adopt a snapshot this catalog did not take
        engine.catalog.remove(snap.id)
        raise SnapshotError(f"snapshot of {volume.name!r}: {snap.file} already exists (taken by another "
                            "bootsrv's catalog?); try again")
    try:
        with volume.gate.hold() as store:
            store.flush()
            crash_point("snapshot.create.flushed")
            images.snapshot(image_of(volume.path), rbd_name(snap), protect=False)
            crash_point("snapshot.create.switched")
    except BaseException:
        if _exists_quietly(snap):  # taken, or unknown: the next start finishes (or drops) it
            log.error("snapshot %d of %s: %s may have been taken; the next start finishes or drops it",
                      snap.id, volume.name, snap.file)
        else:
            engine.catalog.remove(snap.id)
        raise
    pause_ms = volume.gate.last_hold_seconds * 1000
    _finish(engine, snap, pause_ms=pause_ms)
    log.info("snapshot %d of %s taken (%s) as %s: writes held %.1f ms", snap.id, volume.name, origin, snap.file,
             pause_ms)
    return engine.snapshot(snap.id)


def _finish(engine: SnapshotEngine, snap: Snapshot, **fields: float) -> None:
    """Protect the snapshot (with the writes let go: protection changes no data) and count its bytes."""
    images.snapshot(image_of(snap.file), rbd_name(snap), protect=True)
    engine.catalog.update(snap.id, state=SnapshotState.READY, unique_bytes=snaps.used_bytes(locator(snap)), **fields)


def _exists_quietly(snap: Snapshot) -> bool:
    """After a failed take: did the snapshot happen? (Unknown counts as yes: recovery decides.)"""
    try:
        return exists(snap)
    except StoreError:
        return True


# ---- delete -------------------------------------------------------------------------------

def refuse_delete(snap: Snapshot) -> None:
    """Clones made of the snapshot keep it: say which, before anything changes."""
    from snapshots.engine import SnapshotError
    clones = snaps.clones_of(locator(snap)) if exists(snap) else []
    if clones:
        raise SnapshotError(f"snapshot {snap.id} of {snap.disk!r} ({snap.file}) has clones: {', '.join(clones)}; "
                            "remove them or make them stand alone first (rbd flatten POOL/IMAGE)")


def delete(engine: SnapshotEngine, snap: Snapshot) -> None:
    """Remove a snapshot marked DELETING (again, after a crash: removing twice is fine)."""
    following = _next_of(engine, snap)
    try:
        images.remove_snapshot(locator(snap))
    except StoreError:
        if exists(snap):  # still whole: it stays, as it was
            images.snapshot(image_of(snap.file), rbd_name(snap), protect=True)
            engine.catalog.update(snap.id, state=SnapshotState.READY)
        raise
    crash_point("snapshot.delete.unlinked")
    engine.catalog.remove(snap.id)
    if following is not None:  # it now holds what changed since the snapshot before the deleted one
        engine.catalog.update(following.id, unique_bytes=snaps.used_bytes(locator(following)))
    log.info("snapshot %d of %s deleted (%s removed)", snap.id, snap.disk, snap.file)


def _next_of(engine: SnapshotEngine, snap: Snapshot) -> Snapshot | None:
    later = [s for s in engine.catalog.snapshots(snap.disk)
             if s.id > snap.id and s.state == SnapshotState.READY and is_rbd(s.file)]
    return later[0] if later else None


# ---- roll back ----------------------------------------------------------------------------

def rollback(engine: SnapshotEngine, volume: Volume, snap: Snapshot) -> None:
    """The image's content becomes the snapshot's (its sessions are gone or waiting)."""
    from snapshots.engine import SnapshotError
    engine.catalog.update(snap.id, state=SnapshotState.ROLLING_BACK)
    with handle_closed(volume):
        try:
            crash_point("snapshot.rollback.closed")
            images.rollback(locator(snap))
        except StoreError as exc:  # it may have rewritten part of the image: it stays marked, to be done again
            raise SnapshotError(f"rollback of {volume.name!r} to snapshot {snap.id} failed: {exc}; the disk may "
                                f"hold part of each point in time: run it again (bootsrv snapshot rollback {snap.id} "
                                "--force), or the next start does") from None
    for other in engine.catalog.snapshots(volume.name):  # an earlier failed rollback is superseded by this one
        if other.state == SnapshotState.ROLLING_BACK:
            engine.catalog.update(other.id, state=SnapshotState.READY)


def start_over(volume: Volume, base: str, crash_name: str) -> None:
    """The disk starts again as a new clone of `base` (rbd:POOL/IMAGE@SNAP): removed and cloned
    with the serving handle closed. A crash between the two leaves no disk, which the next start
    makes afresh over the current version: the reset the admin asked for. A disk with snapshots
    of its own is refused (removing it would drop them)."""
    from snapshots.engine import SnapshotError
    image = image_of(volume.path)
    own = images.snapshots(image) if images.exists(image) else []
    if own:
        raise SnapshotError(f"disk {volume.name!r} ({volume.path}) has RBD snapshots ({', '.join(own)}): "
                            "starting it again would drop them; delete them first")
    with handle_closed(volume):
        images.remove(image)
        crash_point(crash_name)
        images.clone(base.removeprefix(SCHEME), image)


@contextlib.contextmanager
def handle_closed(volume: Volume) -> Iterator[None]:
    """Under the gate's hold, the serving handle flushed and closed (librbd rolls back or removes
    an image only with its exclusive lock, which that handle holds), then opened again and
    served, whether the step inside succeeded or not (its error is the caller's to report)."""
    with volume.gate.hold() as store:
        store.flush()
        store.close()
        try:
            yield
        finally:
            volume.gate.swap(open_store(str(volume.path)))


# ---- recovery -----------------------------------------------------------------------------

def recover(engine: SnapshotEngine, snap: Snapshot) -> str:
    """Finish or undo what a killed process left of an operation on an RBD snapshot."""
    if snap.state == SnapshotState.CREATING:
        if exists(snap):  # taken under the hold: a whole point in time
            _finish(engine, snap)
            return f"finished snapshot {snap.id} of {snap.disk} ({snap.file} had been taken)"
        engine.catalog.remove(snap.id)
        return f"removed snapshot {snap.id} of {snap.disk} (interrupted before {snap.file} was taken)"
    if snap.state == SnapshotState.DELETING:
        delete(engine, snap)
        return f"finished deleting snapshot {snap.id} of {snap.disk} ({snap.file})"
    rollback(engine, engine.volume(snap.disk), snap)
    return f"finished rolling {snap.disk} back to snapshot {snap.id} ({snap.file})"
