"""Exports for backup: a snapshot's point in time as a standalone file (dynamic
VHD or raw), or as a differencing VHD over an earlier export holding only what
changed since. Each export gets a manifest (JSON, plus a `sha256sum -c` file);
`verify` re-reads an export chain against its manifests.

Every format is written by one loop: the ranges that may differ (allocated ones for a
full export; for an incremental one, the layers the two snapshots do not share, or
on Ceph RBD what diff_iterate says changed between the two RBD snapshots), read from
the snapshot and written to the target. The `rbd export-diff` format (rbd-diff,
snapshots/rbddiff.py) is one more target: full, or over an earlier rbd-diff export.

Exports are written as NAME.partial and renamed when complete, so a backup
folder never holds a half-written file under its final name.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from snapshots import rbddiff, rbdsnaps
from snapshots.catalog import Export, Snapshot, SnapshotState
from snapshots.engine import SnapshotEngine, SnapshotError
from snapshots.faults import crash_point
from snapshots.files import file_sha256, fsync_dir, write_text_atomic
from target.stores.base import BlockStore, FormatError
from target.stores.layered import LayeredStore
from target.stores.meter import NO_METER, Meter
from target.stores.raw import RawStore
from target.stores.registry import open_store
from target.stores.rbd import snaps as rbd_snaps
from target.stores.vhd import open_vhd
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_differencing, create_dynamic

CHUNK = 4 << 20
BITMAP_BYTE_SPAN = 8 * 512  # the sectors one byte of a VHD block's sector bitmap covers
MANIFEST_SUFFIX = ".manifest.json"
FORMATS = {"vhd": "vhd", "raw": "img", "rbd-diff": "rbd-diff"}  # format -> file extension
INCREMENTAL = ("vhd", "rbd-diff")  # formats an export can build on an earlier one in


def _merged(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, length in sorted(runs):
        if out and start <= out[-1][0] + out[-1][1]:
            end = max(out[-1][0] + out[-1][1], start + length)
            out[-1] = (out[-1][0], end - out[-1][0])
        else:
            out.append((start, length))
    return out


def _changed(layers: list[LayeredStore], size: int, smallest: int) -> Iterator[tuple[int, int]]:
    """Ranges where any of these layers holds data: where two views may differ. Past
    `smallest` (the smaller of the two disks, when one was grown) everything may differ."""
    for offset in range(0, smallest, CHUNK):
        length = min(CHUNK, smallest - offset)
        runs = [(start, run) for layer in layers if offset < layer.size
                for start, run, present in layer.own_runs(offset, min(length, layer.size - offset))
                if present]
        yield from _merged(runs)
    if size > smallest:
        yield smallest, size - smallest


def export_snapshot(engine: SnapshotEngine, snap_id: int, dest: Path, fmt: str = "vhd",
                    incremental_from: int | None = None, progress: Meter = NO_METER) -> Export:
    """`progress` goes through the disk's size as it is written, then the file's as it is hashed."""
    with engine.counted("export"), engine.reading(snap_id) as snap:
        return _export(engine, snap, dest, fmt, incremental_from, progress)


def _export(engine: SnapshotEngine, snap: Snapshot, dest: Path, fmt: str, incremental_from: int | None,
            progress: Meter = NO_METER) -> Export:
    if fmt not in FORMATS:
        raise SnapshotError(f"export format {fmt!r}: expected {', '.join(FORMATS)}")
    base = None
    if incremental_from is not None:
        if fmt not in INCREMENTAL:
            raise SnapshotError("an incremental export is a differencing VHD or an rbd export-diff: "
                                "use --format vhd or rbd-diff")
        base = _base_export(engine, snap, incremental_from, dest, fmt)
    dest.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(snap.created))
    kind = "incr" if base else "full"
    final = dest / f"{snap.disk}-{snap.id}-{stamp}-{kind}.{FORMATS[fmt]}"
    partial = final.with_name(final.name + ".partial")
    manifest_path, sums_path = final.with_name(final.name + MANIFEST_SUFFIX), final.with_name(final.name + ".sha256")
    # Until the catalog records the export, a crash makes the next start remove all of these.
    written_files = (partial, final, manifest_path, sums_path)
    for path in written_files:
        engine.catalog.partial_begin(path)
    try:
        partial.unlink(missing_ok=True)
        view = engine.open_point(snap)
        try:
            written = _write_export(engine, view, snap, partial, fmt, base, progress)
        finally:
            view.close()
        crash_point("snapshot.export.written")
        progress.set_total(view.size + partial.stat().st_size)
        digest = file_sha256(partial, progress.advance)
        manifest: dict[str, Any] = {
            "file": final.name, "sha256": digest, "format": fmt, "kind": kind, "disk": snap.disk,
            "snapshot": snap.id, "taken": snap.created, "label": snap.label, "virtual_size": view.size,
            "data_bytes": written,
            "base": {"file": os.path.relpath(base.path, dest), "sha256": base.sha256} if base else None,
        }
        if fmt == "rbd-diff":  # what `rbd import-diff` wants the image to hold first, and takes
            manifest["rbd_snapshots"] = {"from": _diff_name(engine.catalog.get(base.snapshot)) if base else None,
                                         "to": _diff_name(snap)}
        write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
        write_text_atomic(sums_path, f"{digest}  {final.name}\n")
        os.replace(partial, final)
        fsync_dir(dest)
        crash_point("snapshot.export.renamed")
        record = engine.catalog.add_export(snap.id, snap.disk, str(final), fmt, digest, base.path if base else "")
    except BaseException:
        for path in written_files:
            path.unlink(missing_ok=True)
        raise
    finally:
        for path in written_files:
            engine.catalog.partial_end(path)
    return record


def _base_export(engine: SnapshotEngine, snap: Snapshot, base_id: int, dest: Path, fmt: str) -> Export:
    candidates = [e for e in engine.catalog.exports(snapshot=base_id) if e.format == fmt and Path(e.path).exists()]
    if not candidates:
        raise SnapshotError(f"snapshot {base_id} has no {fmt} export to build on: export it first "
                            f"(bootsrv snapshot export {base_id} {dest}{'' if fmt == 'vhd' else ' --format ' + fmt})")
    if candidates[0].disk != snap.disk:
        raise SnapshotError(f"snapshot {base_id} is of disk {candidates[0].disk!r}, not {snap.disk!r}")
    if fmt == "rbd-diff" and not _alive(engine.catalog.get(base_id)):
        raise SnapshotError(f"snapshot {base_id} was deleted: an rbd export-diff is made between two snapshots "
                            f"that exist; make a full one (bootsrv snapshot export {snap.id} {dest} --format rbd-diff)")
    in_dest = [e for e in candidates if Path(e.path).parent.resolve() == dest.resolve()]
    return (in_dest or candidates)[-1]


def _alive(snap: Snapshot | None) -> bool:
    return snap is not None and snap.state == SnapshotState.READY


def _diff_name(snap: Snapshot | None) -> str:
    """The snapshot's name in an rbd export-diff: its RBD snapshot's, or (a VHD disk's) one in the same style."""
    assert snap is not None
    return rbdsnaps.rbd_name(snap) if rbdsnaps.is_rbd(snap.file) else f"{rbdsnaps.PREFIX}{snap.id}"


def _target(engine: SnapshotEngine, view: LayeredStore, snap: Snapshot, path: Path, fmt: str,
            base: Export | None) -> BlockStore | rbddiff.RbdDiffWriter:
    if fmt == "rbd-diff":
        since = _diff_name(engine.catalog.get(base.snapshot)) if base is not None else None
        return rbddiff.RbdDiffWriter(path, view.size, _diff_name(snap), since)
    if base is not None:
        create_differencing(path, base.path, size=view.size)  # the disk may have grown since the base
        return open_vhd(path)
    if fmt == "vhd":
        create_dynamic(path, view.size)
        return open_vhd(path)
    return RawStore.create(path, view.size)


def _write_export(engine: SnapshotEngine, view: LayeredStore, snap: Snapshot, path: Path, fmt: str,
                  base: Export | None, progress: Meter = NO_METER) -> int:
    if base is not None:
        ranges = _incremental_ranges(engine, view, snap, base)
        if fmt == "vhd":
            ranges = _whole_bitmap_bytes(ranges, view.size)
    else:
        ranges = ((start, length) for start, length, mapped in view.extents(0, view.size) if mapped)
    target = _target(engine, view, snap, path, fmt, base)
    written = reached = 0  # reached: how far into the disk (the progress)
    progress.set_total(view.size)
    try:
        for start, length in ranges:
            engine.check_stopping()
            for offset in range(start, start + length, CHUNK):
                size = min(CHUNK, start + length - offset)
                data = view.read(offset, size)
                # A full export stays sparse; zeros over a base must be written.
                if base is not None or data != bytes(size):
                    target.write(offset, data)
                    written += size
                progress.advance(offset + size - reached)
                reached = offset + size
        progress.advance(view.size - reached)
        target.flush()
    finally:
        target.close()
    return written


def _whole_bitmap_bytes(ranges: Iterator[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    """The ranges widened to whole groups of 8 sectors (one byte of a VHD sector bitmap), the
    sectors that did not change read from the snapshot like the rest. Valid VHDs either way,
    but libvhdi (Debian's pyvhdi and vhdimount, through its 2025 releases) reads every sector
    after a set bit in a bitmap byte from the child: a byte that is all set or all clear reads
    the same in libvhdi, qemu and Windows."""
    pending: tuple[int, int] | None = None
    for start, length in ranges:
        low = start - start % BITMAP_BYTE_SPAN
        high = min(size, -(-(start + length) // BITMAP_BYTE_SPAN) * BITMAP_BYTE_SPAN)
        if pending is not None and low <= pending[1]:
            pending = (pending[0], max(pending[1], high))
            continue
        if pending is not None:
            yield pending[0], pending[1] - pending[0]
        pending = (low, high)
    if pending is not None:
        yield pending[0], pending[1] - pending[0]


def _incremental_ranges(engine: SnapshotEngine, view: LayeredStore, snap: Snapshot,
                        base: Export) -> Iterator[tuple[int, int]]:
    """Layers on one path and not the other (snapshot vs. the base export's snapshot)
    hold every sector where the two points in time can differ. If the base snapshot is
    gone (deleted since), the base export itself is compared instead."""
    base_snap = engine.catalog.get(base.snapshot)
    if not _alive(base_snap):
        yield from _compared_ranges(view, Path(base.path))
        return
    assert base_snap is not None
    if rbdsnaps.is_rbd(snap.file):  # librbd knows what changed between its two snapshots
        changes = rbd_snaps.changes(rbdsnaps.locator(snap), rbdsnaps.rbd_name(base_snap))
        yield from _merged([(start, length) for start, length, _ in changes])
        return
    base_view = open_vhd(base_snap.file, readonly=True)
    try:
        ours, theirs = _layers(view), _layers(base_view)
        differing = [layer for path, layer in ours.items() if path not in theirs]
        differing += [layer for path, layer in theirs.items() if path not in ours]
        yield from _changed(differing, view.size, min(view.size, base_view.size))
    finally:
        base_view.close()


def _layers(store: LayeredStore) -> dict[str, LayeredStore]:
    """The open layers of a chain, by file (the chain is already open: no file is opened again)."""
    return {os.path.realpath(layer.path): layer for layer in store.layers()}


def _compared_ranges(view: BlockStore, base_path: Path) -> Iterator[tuple[int, int]]:
    base = open_vhd(base_path, readonly=True)
    try:
        step = 64 << 10
        common = min(view.size, base.size)
        for offset in range(0, common, step):
            size = min(step, common - offset)
            if view.read(offset, size) != base.read(offset, size):
                yield offset, size
        if view.size > common:  # grown since the base: all of the new end
            yield common, view.size - common
    finally:
        base.close()


# ---- verify ---------------------------------------------------------------------------

def verify(path: str | os.PathLike[str], progress: Meter = NO_METER) -> list[str]:
    """Check an export and everything it builds on. Returns findings; empty = sound.
    `progress` goes through each file as it is hashed, then the disk as it is read through
    (its total grows as the chain is found)."""
    total = 0
    findings: list[str] = []
    current: Path | None = Path(path).resolve()
    seen: set[Path] = set()
    formats: list[str] = []
    applies_on: str | None = None  # the snapshot the diff above this one must have ended with
    while current is not None and current not in seen:
        seen.add(current)
        manifest_path = current.with_name(current.name + MANIFEST_SUFFIX)
        if not current.exists():
            findings.append(f"{current}: missing")
            break
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            findings.append(f"{manifest_path}: no readable manifest ({exc})")
            break
        total += current.stat().st_size
        progress.set_total(total)
        digest = file_sha256(current, progress.advance)
        if digest != manifest.get("sha256"):
            findings.append(f"{current}: sha256 {digest} differs from the manifest's {manifest.get('sha256')}")
        if manifest.get("format") == "vhd":
            report = check_vhd(current)
            findings += [f"{current}: {finding}" for finding in report.findings]
        elif manifest.get("format") == "rbd-diff":
            findings += _check_diff(current, manifest)
            names = manifest.get("rbd_snapshots") or {}
            if applies_on is not None and names.get("to") != applies_on:
                findings.append(f"{current}: ends with snapshot {names.get('to')}, the diff over it starts from "
                                f"{applies_on}")
            applies_on = names.get("from")
        formats.append(str(manifest.get("format")))
        base = manifest.get("base")
        if base:
            parent = (current.parent / base["file"]).resolve()
            total += parent.stat().st_size if parent.exists() else 0  # hashed here, and again below
            progress.set_total(total)
            if parent.exists() and file_sha256(parent, progress.advance) != base.get("sha256"):
                findings.append(f"{current}: its base {parent} changed since this export was made")
            current = parent
        else:
            current = None
    if not findings and formats[:1] != ["rbd-diff"]:  # the check read every byte of a diff already
        findings += _read_through(Path(path), progress, total)
    return findings


def _check_diff(path: Path, manifest: dict[str, Any]) -> list[str]:
    """The file is whole, and names the snapshots and size its manifest says."""
    info, findings = rbddiff.check(path)
    names = manifest.get("rbd_snapshots") or {}
    if info is not None and not findings:
        if (info.from_snap, info.to_snap) != (names.get("from"), names.get("to")):
            findings.append(f"{path}: goes from {info.from_snap} to {info.to_snap}, its manifest says "
                            f"{names.get('from')} to {names.get('to')}")
        if info.size != manifest.get("virtual_size"):
            findings.append(f"{path}: size {info.size}, its manifest says {manifest.get('virtual_size')}")
    return findings


def _read_through(path: Path, progress: Meter = NO_METER, before: int = 0) -> list[str]:
    """Every byte of the point in time must be readable through the chain."""
    try:
        store = open_store(path, readonly=True)
    except (FormatError, OSError) as exc:
        return [f"{path}: cannot open the chain: {exc}"]
    progress.set_total(before + store.size)
    try:
        for offset in range(0, store.size, CHUNK):
            store.read(offset, min(CHUNK, store.size - offset))
            progress.advance(min(CHUNK, store.size - offset))
    except Exception as exc:  # any failure to read is a finding, not a crash of verify
        return [f"{path}: read failed: {exc}"]
    finally:
        store.close()
    return []
