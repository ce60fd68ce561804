"""`bootsrv disk ...`: create, inspect, convert, grow and check virtual disks."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from bootsrv.progress import Cancelled, Progress
from snapshots.faults import crash_point
from snapshots.files import fsync_dir
from target.stores.base import BlockStore, StoreError
from target.stores.copy import copy_content
from target.stores.meter import NO_METER, Meter
from target.stores.raw import RawStore
from target.stores.rbd import images as rbd_images
from target.stores.registry import backend_for, create_store, open_store, remove_store, rename_store
from target.stores.vhd import VhdFormatError, VhdStore, open_vhd, read_footer
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_differencing, create_dynamic, create_fixed, extend
from target.stores.vhd.format import TYPE_NAMES

CHUNK = 1 << 20
log = logging.getLogger("bootsrv.disktool")


class DiskToolError(Exception):
    """One line for the admin."""


def is_vhd(path: str | os.PathLike[str]) -> bool:
    """The store registry's rule, looking at the content too: a file an admin names may
    be a VHD under any name."""
    return backend_for(path, sniff=True)[0].name == "vhd"


def open_any(path: str | os.PathLike[str], *, readonly: bool = True) -> BlockStore:
    try:
        return open_store(path, readonly=readonly, sniff=True)
    except StoreError as exc:
        raise DiskToolError(str(exc)) from None


def create(path: str, size: int | None, kind: str, block_size: int, parent: str | None) -> str:
    if os.path.exists(path):
        raise DiskToolError(f"{path} already exists")
    try:
        if parent:
            create_differencing(path, parent)
        elif size is None:
            raise DiskToolError("--size is needed (or --parent for a differencing disk)")
        elif kind == "fixed":
            create_fixed(path, size)
        else:
            create_dynamic(path, size, block_size)
    except VhdFormatError as exc:
        raise DiskToolError(str(exc)) from None
    return f"created {path}"


def info(path: str) -> dict[str, Any]:
    if not is_vhd(path):
        size = os.path.getsize(path)
        return {"path": path, "format": "raw", "virtual_size": size, "allocated": allocated_bytes(path)}
    try:
        footer = read_footer(path)
        store = open_vhd(path, readonly=True)
    except StoreError as exc:
        raise DiskToolError(str(exc)) from None
    result: dict[str, Any] = {
        "path": path, "format": "vhd", "type": TYPE_NAMES[footer.disk_type], "virtual_size": footer.virtual_size,
        "allocated": allocated_bytes(path), "uuid": footer.uuid.hex(), "geometry": list(footer.geometry),
        "creator": footer.creator_app.decode("latin-1").strip("\0 "),
    }
    if isinstance(store, VhdStore):
        result["block_size"] = store.block_size
        result["allocated_blocks"] = store.allocated_blocks()
        result["parents"] = [layer.path for layer in store.chain()[1:]]
    store.close()
    return result


def allocated_bytes(path: str | os.PathLike[str]) -> int:
    """Space the file takes on disk (sparse files take less than their size)."""
    return os.stat(path).st_blocks * 512


def convert(src: str, dst: str, kind: str | None, progress: Progress | None = None) -> str:
    """Copy into DST.partial, sync it, then rename it to DST: a convert that is stopped
    leaves no DST that looks whole, and the next run starts over. DST may be rbd:POOL/IMAGE
    (an import into Ceph). `progress` counts the source's bytes as they are gone through."""
    progress = progress or Progress()
    if dst.startswith("rbd:"):
        return _convert_to_rbd(src, dst, progress)
    if os.path.exists(dst):
        raise DiskToolError(f"{dst} already exists")
    partial = dst + ".partial"
    if os.path.exists(partial):
        log.warning("removing %s, left by a convert that was stopped", partial)
        os.unlink(partial)
    source = open_any(src)
    size = source.size
    progress.set_total(size)
    to_vhd = Path(dst).suffix.lower() == ".vhd" or kind in ("fixed", "dynamic")
    try:
        if to_vhd:
            (create_fixed if kind == "fixed" else create_dynamic)(partial, size)
            target = open_vhd(partial)
        else:
            with open(partial, "wb") as handle:
                handle.truncate(size)
            target = RawStore(partial)
        sparse = not (to_vhd and kind == "fixed")
        for offset in range(0, size, CHUNK):
            data = source.read(offset, min(CHUNK, size - offset))
            if not (sparse and _zeros(data)):  # holes stay holes
                target.write(offset, data)
                crash_point("disk.convert.copying")
            progress.advance(len(data))
        target.flush()
        target.close()
        crash_point("disk.convert.flushed")
        os.rename(partial, dst)
        fsync_dir(Path(dst).parent)
    except (StoreError, OSError, Cancelled) as exc:
        if os.path.exists(partial):
            os.unlink(partial)
        raise DiskToolError(f"converting {src} to {dst}: {exc}") from None
    finally:
        source.close()
    return f"converted {src} -> {dst}"


ZEROS = bytes(CHUNK)


def _zeros(data: bytes) -> bool:
    """A memcmp, not a loop over every byte in Python (any(data) takes seconds per GiB)."""
    return data == (ZEROS if len(data) == CHUNK else bytes(len(data)))


def _convert_to_rbd(src: str, dst: str, progress: Progress) -> str:
    """The same steps into the cluster: rbd:POOL/IMAGE.partial, written, renamed."""
    partial = dst + ".partial"
    try:
        if rbd_images.exists(dst.removeprefix("rbd:")):
            raise DiskToolError(f"{dst} already exists")
        remove_store(partial)  # left by a convert that was stopped
        source = open_any(src)
        try:
            create_store(partial, source.size)
            target = open_store(partial)
            try:
                copy_content(source, target, progress=progress)
            finally:
                target.close()
        finally:
            source.close()
        rename_store(partial, dst)
    except StoreError as exc:
        raise DiskToolError(f"converting {src} to {dst}: {exc}") from None
    return f"converted {src} -> {dst}"


def grow(path: str, size: int, progress: Meter = NO_METER) -> str:
    """`progress`: a differencing VHD takes the new end over from its parent (the rest is metadata)."""
    try:
        if str(path).startswith("rbd:"):  # a Ceph image: librbd resizes it in place
            store = open_store(path)
            try:
                store.resize(size)  # type: ignore[attr-defined]
            finally:
                store.close()
        elif is_vhd(path):
            extend(path, size, after_step=lambda step: crash_point(f"disk.extend.{step}"), progress=progress)
        else:
            if size < os.path.getsize(path):
                raise DiskToolError(f"{path}: shrinking is not supported")
            os.truncate(path, size)
    except StoreError as exc:
        raise DiskToolError(str(exc)) from None
    return f"{path} is now {size} bytes"


def check(path: str) -> tuple[bool, list[str]]:
    if not is_vhd(path):
        return os.path.getsize(path) % 512 == 0, ["raw image: nothing to check beyond its size"]
    report = check_vhd(path)
    lines = [f"problem: {f}" for f in report.findings] + [f"note: {n}" for n in report.notes]
    return report.ok, (["ok"] if report.ok else []) + lines


def print_info(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        print(f"{key:18} {value}")

