"""Making and growing VHD files: fixed, dynamic, differencing."""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

from target.stores.base import fsync_dir
from target.stores.meter import NO_METER, Meter
from target.stores.vhd.format import (
    DEFAULT_BLOCK_SIZE, DIFFERENCING, DYNAMIC, FIXED, FOOTER_SIZE, HEADER_SIZE, MAX_SIZE, SECTOR, DynamicHeader,
    Footer, Locator, VhdFormatError, bat_bytes)
from target.stores.vhd.chain import locator_paths
from target.stores.vhd.store import (VhdStore, extending_marker, finish_fixed_extend, hold_zeros_past_parent,
                                     read_footer)

LOCATOR_SPACE = SECTOR  # each parent path gets one sector
# Room left in the BAT for `disk extend` (readers look only at max_table_entries of it).
GROWTH_ROOM = 64 << 30


def _check_size(size: int) -> None:
    if size <= 0 or size % SECTOR:
        raise VhdFormatError(f"size {size} must be a positive multiple of 512 bytes")
    if size > MAX_SIZE:
        raise VhdFormatError(f"size {size} exceeds the VHD maximum of 2040 GiB")


def _write_new(path: Path, pieces: list[tuple[int, bytes]], length: int) -> None:
    """Write a new file (refusing to overwrite), durably."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, length)
        for offset, data in pieces:
            os.pwrite(fd, data, offset)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def create_fixed(path: str | os.PathLike[str], size: int) -> Footer:
    _check_size(size)
    footer = Footer.new(FIXED, size)
    _write_new(Path(path), [(size, footer.pack())], size + FOOTER_SIZE)
    return footer


def create_dynamic(path: str | os.PathLike[str], size: int, block_size: int = DEFAULT_BLOCK_SIZE) -> Footer:
    _check_size(size)
    if block_size < SECTOR or block_size & (block_size - 1):
        raise VhdFormatError(f"block size {block_size} must be a power of two of at least 512")
    entries = -(-size // block_size)
    header = DynamicHeader(table_offset=FOOTER_SIZE + HEADER_SIZE, max_table_entries=entries, block_size=block_size)
    footer = Footer.new(DYNAMIC, size, data_offset=FOOTER_SIZE)
    return _write_sparse(Path(path), footer, header, [])


def bat_room(size: int, block_size: int) -> int:
    """Entries the BAT area holds: the disk's, and room to grow it later."""
    return -(-min(max(size * 4, GROWTH_ROOM), MAX_SIZE) // block_size)


def _write_sparse(path: Path, footer: Footer, header: DynamicHeader, locator_data: list[bytes]) -> Footer:
    room = max(bat_room(footer.current_size, header.block_size), header.max_table_entries)
    bat_end = header.table_offset + bat_bytes(room)
    end = bat_end + LOCATOR_SPACE * len(locator_data)
    pieces = [(0, footer.pack()), (FOOTER_SIZE, header.pack()),
              (header.table_offset, b"\xff" * (room * 4)), (end, footer.pack())]
    pieces += [(bat_end + i * LOCATOR_SPACE, data) for i, data in enumerate(locator_data)]
    _write_new(path, pieces, end + FOOTER_SIZE)
    return footer


def create_differencing(path: str | os.PathLike[str], parent: str | os.PathLike[str],
                        size: int | None = None) -> Footer:
    """A child of `parent`, of the parent's size or larger (`size`: past the parent's end
    it reads zeros, as a disk grown after its child was made)."""
    child, base = Path(path).resolve(), Path(parent).resolve()
    parent_footer = read_footer(base)  # raises a clear error for a non-VHD parent
    block_size = DEFAULT_BLOCK_SIZE
    if parent_footer.disk_type != FIXED:
        VhdStore(base, readonly=True).close()  # the parent's own chain must open
    if size is not None and size < parent_footer.virtual_size:
        raise VhdFormatError(f"{child}: {size} bytes is smaller than its parent {base} ({parent_footer.virtual_size})")
    if size is not None:
        _check_size(size)
    size = parent_footer.virtual_size if size is None else size
    entries = -(-size // block_size)
    paths = locator_paths(child, base)
    bat_end = FOOTER_SIZE + HEADER_SIZE + bat_bytes(max(bat_room(size, block_size), entries))
    locators, data = [], []
    for i, (code, text) in enumerate(paths):
        encoded = text.encode("utf-16-le")
        if len(encoded) > LOCATOR_SPACE:
            raise VhdFormatError(f"parent path {text!r} is too long for a locator")
        locators.append(Locator(code, LOCATOR_SPACE, len(encoded), bat_end + i * LOCATOR_SPACE))
        data.append(encoded)
    header = DynamicHeader(table_offset=FOOTER_SIZE + HEADER_SIZE, max_table_entries=entries,
                           block_size=block_size, parent_uuid=parent_footer.uuid,
                           parent_timestamp=parent_footer.timestamp, parent_name=base.name,
                           locators=tuple(locators))
    footer = Footer.new(DIFFERENCING, size, data_offset=FOOTER_SIZE)
    made = _write_sparse(child, footer, header, data)
    if size > parent_footer.virtual_size:
        hold_zeros_past_parent(child)
    return made


def extend(path: str | os.PathLike[str], new_size: int, *,
           after_step: Callable[[str], None] = lambda step: None, progress: Meter = NO_METER) -> Footer:
    """Grow a VHD offline. Each step leaves a readable file; one stopped between the footer
    and its copy at 0 is finished when a store next opens the file read-write (the copy
    follows the footer). `after_step` names each step as it ends. A differencing disk
    then holds the sectors past its parent's end as zeros (hold_zeros_past_parent); one
    stopped before that reads right here, and the next extend to the same size finishes it."""
    grown = _extend_file(path, new_size, after_step)
    if grown.disk_type == DIFFERENCING:
        hold_zeros_past_parent(path, progress)
    return grown


def _extend_file(path: str | os.PathLike[str], new_size: int, after_step: Callable[[str], None]) -> Footer:
    _check_size(new_size)
    footer = read_footer(path)
    if new_size < footer.virtual_size:
        raise VhdFormatError(f"{path}: shrinking ({footer.virtual_size} -> {new_size}) is not supported")
    # A differencing disk grows like a dynamic one: past its parent's end it reads zeros.
    grown = footer.resized(new_size)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:  # a store that has the file open (a running server) caches its header and footer
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise VhdFormatError(f"{path} is in use (a running bootsrv serves it, or a disk chain over it): "
                                 "stop serving it before extending it") from None
        if footer.disk_type == FIXED:
            finish_fixed_extend(path, fd, footer)  # a run stopped halfway: finish it first
            old = footer.virtual_size
            if old == new_size:  # done already (a second run would zero the footer itself)
                return footer
            marker = extending_marker(path)
            with open(marker, "w") as handle:  # names the old footer until it is zeros
                handle.write(str(old))
                handle.flush()
                os.fsync(handle.fileno())
            fsync_dir(marker.parent)
            os.pwrite(fd, grown.pack(), new_size)  # the new footer first, at the new end
            os.fsync(fd)
            after_step("footer")
            os.pwrite(fd, bytes(FOOTER_SIZE), old)  # then the old one becomes zeros of the disk
            os.fsync(fd)
            marker.unlink()
            fsync_dir(marker.parent)
            return grown
        header = DynamicHeader.unpack(os.pread(fd, HEADER_SIZE, footer.data_offset), os.fspath(path))
        entries = -(-new_size // header.block_size)
        room = _bat_room_on_disk(fd, header)
        if entries > room:
            raise VhdFormatError(f"{path}: the BAT has room for {room * header.block_size} bytes; "
                                 f"use bootsrv disk convert to make a larger disk")
        os.pwrite(fd, replace(header, max_table_entries=max(entries, header.max_table_entries)).pack(),
                  footer.data_offset)
        os.fsync(fd)
        after_step("header")
        end = os.fstat(fd).st_size - FOOTER_SIZE
        os.pwrite(fd, grown.pack(), end)
        after_step("footer")
        os.pwrite(fd, grown.pack(), 0)
        os.fsync(fd)
        return grown
    finally:
        os.close(fd)


def _bat_room_on_disk(fd: int, header: DynamicHeader) -> int:
    """Entries that fit before the first thing after the BAT (a locator or a block)."""
    size = os.fstat(fd).st_size
    raw = os.pread(fd, header.max_table_entries * 4, header.table_offset)
    starts = [int.from_bytes(raw[i:i + 4], "big") * SECTOR for i in range(0, len(raw), 4)
              if raw[i:i + 4] != b"\xff\xff\xff\xff"]
    starts += [loc.data_offset for loc in header.locators]
    limit = min(starts, default=size - FOOTER_SIZE)
    room = (limit - header.table_offset) // 4
    # Only entries still holding 0xFFFFFFFF past the table are usable.
    extra = os.pread(fd, max(room - header.max_table_entries, 0) * 4, header.table_offset + header.max_table_entries * 4)
    free = len(extra) // 4
    for i in range(0, len(extra), 4):
        if extra[i:i + 4] != b"\xff\xff\xff\xff":
            free = i // 4
            break
    return header.max_table_entries + free
