"""Editing a differencing chain: which sectors a layer holds, copying a layer's
data into its child, and pointing a child at another parent (or at none).

These are the steps the snapshot engine composes into merges. Each one leaves
every file readable, with the same content, whenever it is interrupted, and each
can be run again: that is what makes a merge resumable after a crash.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from target.stores.layered import LayeredStore
from target.stores.vhd.format import (
    DIFFERENCING, DYNAMIC, FOOTER_SIZE, HEADER_SIZE, DynamicHeader, Locator, VhdFormatError)
from target.stores.vhd.store import read_footer


def copy_missing(source: LayeredStore, target: LayeredStore, offset: int, length: int) -> int:
    """Copy the sectors `source` holds in the range and `target`'s own layer lacks.
    Run again, it copies nothing more: sectors already present are never touched."""
    copied = 0
    for start, size, present in source.own_runs(offset, length):
        if not present:
            continue
        for sub_start, sub_size, have in target.own_runs(start, size):
            if not have:
                target.write(sub_start, source.read(sub_start, sub_size))
                copied += sub_size
    return copied


def parent_uuid(path: str | os.PathLike[str]) -> bytes | None:
    """The UUID a differencing disk names as its parent; None for other disks."""
    footer = read_footer(path)
    if footer.disk_type != DIFFERENCING:
        return None
    with open(path, "rb") as handle:
        handle.seek(footer.data_offset)
        return DynamicHeader.unpack(handle.read(HEADER_SIZE), os.fspath(path)).parent_uuid


def locator_paths(child: Path, parent: Path) -> list[tuple[bytes, str]]:
    """Relative (W2ru) and absolute (W2ku) parent paths, as Windows writes them."""
    relative = os.path.relpath(parent, child.parent).replace("/", "\\")
    return [(b"W2ru", relative if relative.startswith("..") else ".\\" + relative), (b"W2ku", str(parent))]


def relink(path: str | os.PathLike[str], new_parent: str | os.PathLike[str]) -> None:
    """Make a differencing disk name another parent (which must hold the same view).

    Locator data is written first, the header last: interrupted in between, the
    header still names the old parent, whose file is still there (the old parent
    is removed only after this returns), and the mismatching locators are skipped."""
    child, parent = Path(path).resolve(), Path(new_parent).resolve()
    footer = read_footer(child)
    if footer.disk_type != DIFFERENCING:
        raise VhdFormatError(f"{child}: not a differencing disk")
    parent_footer = read_footer(parent)
    fd = os.open(child, os.O_RDWR | os.O_CLOEXEC)
    try:
        header = DynamicHeader.unpack(os.pread(fd, HEADER_SIZE, footer.data_offset), str(child))
        slots = sorted(header.locators, key=lambda loc: loc.data_offset)
        wanted = locator_paths(child, parent)
        if len(slots) < len(wanted):
            raise VhdFormatError(f"{child}: {len(slots)} parent locators, need {len(wanted)}")
        locators = []
        for slot, (code, text) in zip(slots, wanted):
            encoded = text.encode("utf-16-le")
            if len(encoded) > slot.data_space:
                raise VhdFormatError(f"{child}: parent path {text!r} does not fit its locator")
            os.pwrite(fd, encoded.ljust(slot.data_space, b"\0"), slot.data_offset)
            locators.append(Locator(code, slot.data_space, len(encoded), slot.data_offset))
        os.fsync(fd)
        new = replace(header, parent_uuid=parent_footer.uuid, parent_timestamp=parent_footer.timestamp,
                      parent_name=parent.name, locators=tuple(locators))
        os.pwrite(fd, new.pack(), footer.data_offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def detach(path: str | os.PathLike[str]) -> None:
    """A differencing disk whose parent's data it now holds becomes a dynamic disk.

    Valid only when every sector the old parent held has been copied in: sectors
    still absent then read as zeros both ways (never-written file space is zeros).
    The footer changes type first: from then on the header's parent is ignored."""
    footer = read_footer(path)
    if footer.disk_type != DIFFERENCING:
        return
    dynamic = replace(footer, disk_type=DYNAMIC)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        end = os.fstat(fd).st_size - FOOTER_SIZE
        os.pwrite(fd, dynamic.pack(), end)
        os.pwrite(fd, dynamic.pack(), 0)
        os.fsync(fd)
        header = DynamicHeader.unpack(os.pread(fd, HEADER_SIZE, footer.data_offset), os.fspath(path))
        os.pwrite(fd, replace(header, parent_uuid=bytes(16), parent_timestamp=0, parent_name="",
                              locators=()).pack(), footer.data_offset)
        os.fsync(fd)
    finally:
        os.close(fd)
