"""Crash recovery: finish or undo what a killed process left half done.

Run once at start, before any disk is served. Every operation of the engine
keeps each disk a whole chain at every step and records in the catalog what
was under way (state CREATING or DELETING), so recovery only has to decide,
per record, whether the step that makes it visible happened:

- an export not yet in the catalog: its files are removed;
- a live.new left beside a disk: the switch never happened, it is removed;
- a snapshot CREATING: if the live layer already names the frozen layer as its
  parent the switch happened and the snapshot is finished, else it is undone;
- a snapshot DELETING: the merge is resumed (each of its steps can be redone).

A snapshot on Ceph RBD is finished or undone the same way by snapshots/rbdsnaps.py
(and ROLLING_BACK, which only RBD records, is rolled back again).

A record that cannot be finished or undone stays as it is and is tried again at
the next start; the disks are served meanwhile.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from snapshots import rbdsnaps
from snapshots.catalog import Snapshot, SnapshotState
from snapshots.engine import SnapshotEngine, SnapshotError, fresh_path
from target.stores.errors import StoreError
from target.stores.vhd import open_vhd
from target.stores.vhd.chain import parent_uuid, relink
from target.stores.vhd.store import read_footer

log = logging.getLogger("bootsrv.snapshots")

UNFINISHED = (SnapshotState.CREATING, SnapshotState.DELETING, SnapshotState.ROLLING_BACK)


def recover(engine: SnapshotEngine) -> list[str]:
    """Finish or undo what a killed process left half done. Returns what was done."""
    done: list[str] = []
    recorded = {e.path for e in engine.catalog.exports()}
    for path in engine.catalog.partials():
        belongs = any(str(path) == kept or str(path).startswith(kept + ".") for kept in recorded)
        if not belongs and path.exists():
            path.unlink()
            done.append(f"removed {path} (an export that did not finish)")
        engine.catalog.partial_end(path)
    for volume in engine.volumes.values():
        if rbdsnaps.is_rbd(volume.path):
            continue  # no files beside an RBD image
        leftover = fresh_path(volume.path)
        if leftover.exists():
            leftover.unlink()
            done.append(f"removed {leftover} (a snapshot or rollback that did not switch)")
    for snap in engine.catalog.snapshots():
        if snap.disk not in engine.volumes or snap.state not in UNFINISHED:
            continue
        try:
            if rbdsnaps.is_rbd(snap.file):
                done.append(rbdsnaps.recover(engine, snap))
            elif snap.state == SnapshotState.CREATING:
                done.append(_recover_create(engine, snap))
            else:
                engine.merge_away(snap)
                done.append(f"finished deleting snapshot {snap.id} of {snap.disk}")
        except (SnapshotError, StoreError, OSError) as exc:  # StoreError includes VhdFormatError
            # The live disk is a whole chain at every step, so the other disks (and this one)
            # are still served; the record stays as it is and the next start tries again.
            log.error("recovery: snapshot %d of %s (%s) could not be finished or undone: %s; "
                      "it is tried again at the next start", snap.id, snap.disk, snap.state, exc)
    for line in done:
        log.warning("recovery: %s", line)
    return done


def _recover_create(engine: SnapshotEngine, snap: Snapshot) -> str:
    live = engine.volume(snap.disk).path
    if not snap.file:  # recorded without its file name by an older bootsrv: nothing was made yet
        engine.catalog.remove(snap.id)
        return f"removed snapshot {snap.id} of {snap.disk} (interrupted before its file was named)"
    frozen = Path(snap.file)
    if frozen.exists() and not os.path.samefile(frozen, live) and parent_uuid(live) == read_footer(frozen).uuid:
        store = open_vhd(frozen, readonly=True)
        below = store.parent.path if store.parent is not None else None
        store.close()
        if below is not None:
            relink(frozen, below)
        engine.catalog.update(snap.id, state=SnapshotState.READY, uuid=read_footer(frozen).uuid.hex(),
                              unique_bytes=engine.layer_bytes(frozen))
        return f"finished snapshot {snap.id} of {snap.disk} (the switch had happened)"
    engine.undo_create(snap, live)
    return f"rolled back snapshot {snap.id} of {snap.disk} (interrupted before the switch)"
