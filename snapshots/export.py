"""Exports for backup: a snapshot's point in time as a standalone file (dynamic
VHD or raw), or as a differencing VHD over an earlier export holding only what
changed since. Each export gets a manifest (JSON, plus a `sha256sum -c` file);
`verify` re-reads an export chain against its manifests.

Exports are written as NAME.partial and renamed when complete, so a backup
folder never holds a half-written file under its final name.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from snapshots.catalog import Export, Snapshot
from snapshots.engine import SnapshotEngine, SnapshotError
from snapshots.faults import crash_point
from snapshots.files import file_sha256, fsync_dir, write_text_atomic
from target.stores.base import BlockStore, FormatError
from target.stores.layered import LayeredStore
from target.stores.raw import RawStore
from target.stores.registry import open_store
from target.stores.vhd import open_vhd
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_differencing, create_dynamic

CHUNK = 4 << 20
MANIFEST_SUFFIX = ".manifest.json"


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
                    incremental_from: int | None = None) -> Export:
    with engine.counted("export"), engine.reading(snap_id) as snap:
        return _export(engine, snap, dest, fmt, incremental_from)


def _export(engine: SnapshotEngine, snap: Snapshot, dest: Path, fmt: str, incremental_from: int | None) -> Export:
    if fmt not in ("vhd", "raw"):
        raise SnapshotError(f"export format {fmt!r}: expected vhd or raw")
    base = None
    if incremental_from is not None:
        if fmt != "vhd":
            raise SnapshotError("an incremental export is a differencing VHD: use --format vhd")
        base = _base_export(engine, snap, incremental_from, dest)
    dest.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(snap.created))
    kind = "incr" if base else "full"
    final = dest / f"{snap.disk}-{snap.id}-{stamp}-{kind}.{'vhd' if fmt == 'vhd' else 'img'}"
    partial = final.with_name(final.name + ".partial")
    manifest_path, sums_path = final.with_name(final.name + MANIFEST_SUFFIX), final.with_name(final.name + ".sha256")
    # Until the catalog records the export, a crash makes the next start remove all of these.
    written_files = (partial, final, manifest_path, sums_path)
    for path in written_files:
        engine.catalog.partial_begin(path)
    try:
        partial.unlink(missing_ok=True)
        view = open_vhd(snap.file, readonly=True)
        try:
            written = _write_export(engine, view, snap, partial, fmt, base)
        finally:
            view.close()
        crash_point("snapshot.export.written")
        digest = file_sha256(partial)
        manifest: dict[str, Any] = {
            "file": final.name, "sha256": digest, "format": fmt, "kind": kind, "disk": snap.disk,
            "snapshot": snap.id, "taken": snap.created, "label": snap.label, "virtual_size": view.size,
            "data_bytes": written,
            "base": {"file": os.path.relpath(base.path, dest), "sha256": base.sha256} if base else None,
        }
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


def _base_export(engine: SnapshotEngine, snap: Snapshot, base_id: int, dest: Path) -> Export:
    candidates = [e for e in engine.catalog.exports(snapshot=base_id) if e.format == "vhd" and Path(e.path).exists()]
    if not candidates:
        raise SnapshotError(f"snapshot {base_id} has no VHD export to build on: export it first "
                            f"(bootsrv snapshot export {base_id} {dest})")
    if candidates[0].disk != snap.disk:
        raise SnapshotError(f"snapshot {base_id} is of disk {candidates[0].disk!r}, not {snap.disk!r}")
    in_dest = [e for e in candidates if Path(e.path).parent.resolve() == dest.resolve()]
    return (in_dest or candidates)[-1]


def _write_export(engine: SnapshotEngine, view: LayeredStore, snap: Snapshot, path: Path, fmt: str,
                  base: Export | None) -> int:
    if base is not None:
        create_differencing(path, base.path, size=view.size)  # the disk may have grown since the base
        target: BlockStore = open_vhd(path)
        ranges = _incremental_ranges(engine, view, snap, base)
    else:
        if fmt == "vhd":
            create_dynamic(path, view.size)
            target = open_vhd(path)
        else:
            target = RawStore.create(path, view.size)
        ranges = ((start, length) for start, length, mapped in view.extents(0, view.size) if mapped)
    written = 0
    try:
        for start, length in ranges:
            engine.check_stopping()
            for offset in range(start, start + length, CHUNK):
                size = min(CHUNK, start + length - offset)
                data = view.read(offset, size)
                if base is not None or any(data):  # a full export stays sparse; zeros over a base must be written
                    target.write(offset, data)
                    written += size
        target.flush()
    finally:
        target.close()
    return written


def _incremental_ranges(engine: SnapshotEngine, view: LayeredStore, snap: Snapshot,
                        base: Export) -> Iterator[tuple[int, int]]:
    """Layers on one path and not the other (snapshot vs. the base export's snapshot)
    hold every sector where the two points in time can differ. If the base snapshot is
    gone (deleted since), the base export itself is compared instead."""
    base_snap = engine.catalog.get(base.snapshot)
    if base_snap is None or base_snap.state != "ready":
        yield from _compared_ranges(view, Path(base.path))
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

def verify(path: str | os.PathLike[str]) -> list[str]:
    """Check an export and everything it builds on. Returns findings; empty = sound."""
    findings: list[str] = []
    current: Path | None = Path(path).resolve()
    seen: set[Path] = set()
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
        digest = file_sha256(current)
        if digest != manifest.get("sha256"):
            findings.append(f"{current}: sha256 {digest} differs from the manifest's {manifest.get('sha256')}")
        if manifest.get("format") == "vhd":
            report = check_vhd(current)
            findings += [f"{current}: {finding}" for finding in report.findings]
        base = manifest.get("base")
        if base:
            parent = (current.parent / base["file"]).resolve()
            if parent.exists() and file_sha256(parent) != base.get("sha256"):
                findings.append(f"{current}: its base {parent} changed since this export was made")
            current = parent
        else:
            current = None
    if not findings:
        findings += _read_through(Path(path))
    return findings


def _read_through(path: Path) -> list[str]:
    """Every byte of the point in time must be readable through the chain."""
    try:
        store = open_store(path, readonly=True)
    except (FormatError, OSError) as exc:
        return [f"{path}: cannot open the chain: {exc}"]
    try:
        for offset in range(0, store.size, CHUNK):
            store.read(offset, min(CHUNK, store.size - offset))
    except Exception as exc:  # any failure to read is a finding, not a crash of verify
        return [f"{path}: read failed: {exc}"]
    finally:
        store.close()
    return []
