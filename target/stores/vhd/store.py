"""VHD backing stores: fixed, dynamic and differencing disks.

Allocation order (a crash at any point leaks space at worst):
1. the footer is written at the new end of the file,
2. the block's bitmap and data are written,
3. fdatasync, so the BAT can never point at data that is not on disk,
4. the BAT entry is written (durable at the next SYNCHRONIZE CACHE / FUA).
If the crash lands between 1 and 2 the file simply has a longer tail; the copy
of the footer at offset 0 is there for readers that find no footer at the end.

Bits set in an allocated block's bitmap (sectors written for the first time) stay
in memory until the next flush, which syncs the data first and then writes them:
a power cut can lose an unflushed write, but never leave a sector claimed whose
data did not reach the disk (in a differencing disk that would read as zeros
instead of the parent's data).

Which block is where, and which of its sectors this layer holds, is the
BlockMap (blockmap.py); this module does the I/O, in the order above.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from pathlib import Path, PureWindowsPath
from typing import Iterator

from target.stores.base import StoreError, fsync_dir, store_error
from target.stores.fileio import open_locked, read_at, sync, write_at
from target.stores.meter import NO_METER, Meter
from target.stores.pieces import FileSlice, Piece, Pieces, add_piece, file_handle, sendable
from target.stores.raw import RawStore, punch_hole
from target.stores.vhd.blockmap import BlockMap
from target.stores.vhd.format import (
    DIFFERENCING, DYNAMIC, FIXED, FOOTER_COOKIE, FOOTER_SIZE, HEADER_SIZE, SECTOR, UNALLOCATED, DynamicHeader, Footer,
    VhdFormatError)

log = logging.getLogger("bootsrv.vhd")

# Snapshots stack layers: a golden image's own chain plus a disk's snapshots.
MAX_CHAIN = 64


def open_vhd(path: str | os.PathLike[str], *, readonly: bool = False) -> "RawStore | VhdStore":
    """A store for any VHD: fixed ones are raw data with a footer behind it."""
    footer = read_footer(path)
    if footer.disk_type == FIXED:
        return FixedVhdStore(path, footer, readonly=readonly)
    return VhdStore(path, readonly=readonly)


HOLD_STEP = 256 << 20  # hold_zeros_past_parent's step between two progress reports


def hold_zeros_past_parent(path: str | os.PathLike[str], progress: Meter = NO_METER) -> None:
    """A differencing disk larger than its parent holds the sectors past the parent's end
    (as zeros) itself; run again, it changes nothing."""
    store = open_vhd(path)
    try:
        if isinstance(store, VhdStore) and store.parent is not None and store.parent.size < store.size:
            progress.set_total(store.size - store.parent.size)
            for offset in range(store.parent.size, store.size, HOLD_STEP):
                store.hold_zeros(offset, min(HOLD_STEP, store.size - offset))
                progress.advance(min(HOLD_STEP, store.size - offset))
            store.flush()
    finally:
        store.close()


def read_footer(path: str | os.PathLike[str]) -> Footer:
    where = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(FOOTER_SIZE)
            if head[:8] == b"vhdxfile":
                raise VhdFormatError(f"{where}: this is a VHDX file; convert it first: "
                                     f"qemu-img convert -O vpc -o subformat=dynamic {where} disk.vhd")
            size = handle.seek(0, os.SEEK_END)
            if size < FOOTER_SIZE:
                raise VhdFormatError(f"{where}: too small to be a VHD ({size} bytes)")
            handle.seek(size - FOOTER_SIZE)
            tail = handle.read(FOOTER_SIZE)
    except OSError as exc:
        raise VhdFormatError(f"{where}: cannot read: {exc.strerror}") from exc
    try:
        return Footer.unpack(tail, where)
    except VhdFormatError:
        if tail[1:9] == b"conectix":  # a 511-byte footer
            return Footer.unpack(tail[1:], where)
        if head[:8] == b"conectix":  # dynamic disks keep a copy at offset 0 (a crash mid-allocation)
            return Footer.unpack(head, where)
        raise


def extending_marker(path: str | os.PathLike[str]) -> Path:
    """Where `disk extend` of a fixed VHD notes the old size until the grown disk is whole."""
    return Path(os.fspath(path) + ".extending")


def finish_fixed_extend(path: str | os.PathLike[str], fd: int, footer: Footer) -> None:
    """A fixed extend stopped between its two steps leaves the old footer inside the
    grown disk's data (new footer at the new end, old one not yet zeroed); its marker
    says where, so that sector becomes the zeros a grown disk promises. The sector is
    zeroed only while it still holds this disk's old footer, never data written since."""
    marker = extending_marker(path)
    try:
        old = int(marker.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise VhdFormatError(f"{marker}: unreadable ({exc}); an interrupted `bootsrv disk extend` left it; "
                             "remove it and run the extend again") from None
    try:
        if 0 <= old < footer.virtual_size and old % SECTOR == 0 and _is_old_footer(os.pread(fd, FOOTER_SIZE, old),
                                                                                   footer):
            log.warning("%s: finishing an interrupted extend (the old footer at %d becomes zeros)", path, old)
            os.pwrite(fd, bytes(FOOTER_SIZE), old)
            os.fsync(fd)
        marker.unlink()
        fsync_dir(marker.parent)
    except OSError as exc:
        raise store_error(f"finishing the interrupted extend of {path}", exc) from exc


def _is_old_footer(sector: bytes, footer: Footer) -> bool:
    try:
        return Footer.unpack(sector, "").uuid == footer.uuid
    except VhdFormatError:  # not a footer (any more): data, which is never touched
        return False


class FixedVhdStore(RawStore):
    """A fixed VHD: the disk's bytes, then a 512-byte footer that must stay put."""

    def __init__(self, path: str | os.PathLike[str], footer: Footer, *, readonly: bool = False) -> None:
        super().__init__(path, readonly=readonly, footer_bytes=FOOTER_SIZE)
        self.footer = footer
        if footer.virtual_size > self._size:
            raise StoreError(f"{self.path}: footer says {footer.virtual_size} bytes, file holds {self._size}")
        self._size = footer.virtual_size
        if not readonly:
            try:
                finish_fixed_extend(self.path, self._fd, footer)
            except BaseException:
                self.close()
                raise

    def refresh_size(self) -> int:
        return self._size  # grown only by `bootsrv disk extend`, which rewrites the footer

    @property
    def uuid(self) -> bytes:  # type: ignore[override]
        return self.footer.uuid


class VhdStore:
    """A dynamic or differencing VHD (with its parent chain, opened read-only)."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False, _depth: int = 0) -> None:
        self.path = os.fspath(path)
        self._readonly = readonly
        self.footer = read_footer(path)
        if self.footer.disk_type not in (DYNAMIC, DIFFERENCING):
            raise VhdFormatError(f"{self.path}: not a dynamic or differencing VHD")
        self._fd = open_locked(self.path, readonly=readonly)
        try:
            self._load(_depth)
            if not readonly:
                self._restore_footers()
        except BaseException:
            os.close(self._fd)
            raise
        self._lock = threading.RLock()

    def _load(self, depth: int) -> None:
        self.header = DynamicHeader.unpack(os.pread(self._fd, HEADER_SIZE, self.footer.data_offset), self.path)
        header = self.header
        self._block_size = header.block_size
        self._bitmap_size = header.bitmap_size
        self._size = self.footer.virtual_size
        needed = -(-self._size // header.block_size)
        if header.max_table_entries < needed:
            raise VhdFormatError(f"{self.path}: BAT has {header.max_table_entries} entries, "
                                 f"the disk needs {needed}")
        raw = os.pread(self._fd, header.max_table_entries * 4, header.table_offset)
        if len(raw) < header.max_table_entries * 4:
            raise VhdFormatError(f"{self.path}: block allocation table runs past the end of the file")
        self._map = BlockMap.from_disk(raw, header.block_size, header.bitmap_size, self._size)
        file_size = os.fstat(self._fd).st_size
        self._end = -(-(file_size - FOOTER_SIZE) // SECTOR) * SECTOR  # where the next block goes
        self._flushing = threading.Lock()  # one save at a time: an older one landing last would unset bits
        self.parent: VhdStore | RawStore | None = None
        if self.footer.disk_type == DIFFERENCING:
            if depth >= MAX_CHAIN:
                raise VhdFormatError(f"{self.path}: parent chain longer than {MAX_CHAIN}")
            self.parent = self._open_parent(depth)

    def _restore_footers(self) -> None:
        """Finish what a crash interrupted so that every reader agrees on the footer:
        a power cut in a block allocation can leave the file longer than its last
        footer (the size reached the disk, the footer did not), and `disk extend`
        stopped between the footer and its copy at 0 leaves the copy stale. bootsrv
        copes with both, but readers that look only at the end (libvhdi) need the
        footer there, and `disk check` wants the two to agree."""
        size = os.fstat(self._fd).st_size
        head, tail = os.pread(self._fd, FOOTER_SIZE, 0), os.pread(self._fd, FOOTER_SIZE, size - FOOTER_SIZE)
        if tail[:8] != FOOTER_COOKIE and tail[1:9] != FOOTER_COOKIE:  # (511-byte footers are an old creator's)
            log.warning("%s: no footer at the end of the file (a power cut during a block allocation?); "
                        "writing it back", self.path)
            self._pwrite(self._end, self.footer.pack())
        elif head[:8] == FOOTER_COOKIE and head != tail:
            log.warning("%s: the footer copy at offset 0 is out of date (an interrupted disk extend?); "
                        "copying the footer", self.path)
            self._pwrite(0, tail)
        else:
            return
        self._sync(data_only=False)


    # ---- parent chain ---------------------------------------------------------

    def parent_candidates(self) -> list[Path]:
        here = Path(self.path).resolve().parent
        found: list[Path] = []
        for locator in self.header.locators:
            raw = os.pread(self._fd, locator.data_length, locator.data_offset)
            if locator.code in (b"W2ru", b"W2ku"):
                text = raw.decode("utf-16-le", errors="replace").rstrip("\0")
                if text.startswith("/"):
                    found.append(Path(text))
                elif locator.code == b"W2ru":
                    found.append(here.joinpath(*PureWindowsPath(text).parts))
                else:
                    found.append(here / PureWindowsPath(text).name)
            elif locator.code == b"MacX":
                text = raw.decode("utf-8", errors="replace").rstrip("\0")
                found.append(Path(text.removeprefix("file://")))
        if self.header.parent_name:
            found.append(here / PureWindowsPath(self.header.parent_name).name)
        return list(dict.fromkeys(found))

    def _open_parent(self, depth: int) -> "VhdStore | RawStore":
        # A layer moved into a snapshot folder keeps a stale relative locator: a candidate
        # that is another disk is skipped, and the next locator is tried.
        candidates = self.parent_candidates()
        mismatched: list[str] = []
        for candidate in candidates:
            if not candidate.exists():
                continue
            try:
                parent_footer = read_footer(candidate)
            except VhdFormatError as exc:
                mismatched.append(str(exc))
                continue
            if parent_footer.uuid != self.header.parent_uuid:
                mismatched.append(f"{candidate} has UUID {parent_footer.uuid.hex()}")
                continue
            if parent_footer.disk_type == FIXED:
                return FixedVhdStore(candidate, parent_footer, readonly=True)
            return VhdStore(candidate, readonly=True, _depth=depth + 1)
        looked = ", ".join(map(str, candidates)) or "no locators"
        if mismatched:
            raise VhdFormatError(f"{self.path}: parent with UUID {self.header.parent_uuid.hex()} not found "
                                 f"({'; '.join(mismatched)})")
        raise VhdFormatError(f"{self.path}: parent {self.header.parent_name!r} not found (looked at {looked})")

    # ---- LayeredStore (target.stores.layered) --------------------------------------

    @property
    def uuid(self) -> bytes:
        return self.footer.uuid

    def layers(self) -> list["VhdStore | RawStore"]:
        return [self, *self.parent.layers()] if self.parent is not None else [self]

    chain = layers  # the name bootsrv's disk tool uses

    # ---- BlockStore -------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    def refresh_size(self) -> int:
        return self._size

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def can_unmap(self) -> bool:
        return not self._readonly

    @property
    def block_size(self) -> int:
        return self._block_size

    def allocated_blocks(self) -> int:
        return self._map.allocated_blocks()

    def own_runs(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(offset, length, present) runs over [offset, offset+length): present = this
        layer's own file holds the sectors (its parents are not looked at)."""
        self._check(offset, length)
        runs: list[tuple[int, int, bool]] = []
        bat, bs = self._map.bat, self._block_size
        for block, within, count in self._map.spans(offset, length):
            if bat[block] == UNALLOCATED:
                pieces = [(block * bs + within, count, False)]
            else:
                pieces = [(block * bs + first * SECTOR, (last - first) * SECTOR, present)
                          for first, last, present in self._runs(block, within // SECTOR, (within + count) // SECTOR)]
            for start, size, present in pieces:
                if runs and runs[-1][2] == present and runs[-1][0] + runs[-1][1] == start:
                    runs[-1] = (runs[-1][0], runs[-1][1] + size, present)
                else:
                    runs.append((start, size, present))
        return runs

    def held_bytes(self) -> int:
        """Bytes of disk data this layer's own file holds (a snapshot's unique data)."""
        total = 0
        for block in self._map.allocated():
            start = block * self._block_size
            length = min(self._block_size, self._size - start)
            total += sum(size for _, size, present in self.own_runs(start, length) if present)
        return total

    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        at = self._map.present_at(offset, length)
        if at is not None:
            return read_at(self._fd, self.path, at, length, nowait)
        parts: list[Piece] = []
        self._read_into(parts, offset, length, zero_copy=False, nowait=nowait)
        return b"".join(parts)  # type: ignore[arg-type]  (no slices without zero_copy)

    def read_pieces(self, offset: int, length: int, *, nowait: bool = False) -> Pieces:
        """The read as file slices for sendfile (see target.stores.pieces)."""
        parts: list[Piece] = []
        self._read_into(parts, offset, length, zero_copy=True, nowait=nowait)
        return sendable(parts, nowait)

    def _read_into(self, parts: list[Piece], offset: int, length: int, *, zero_copy: bool,
                   nowait: bool = False) -> None:
        self._check(offset, length)
        bmap = self._map
        bat, full, bitmaps, bs, bitmap_size = bmap.bat, bmap.full, bmap.bitmaps, self._block_size, self._bitmap_size
        fd, path = self._fd, self.path
        handle = None
        pos, end = offset, offset + length
        while pos < end:  # block by block (BlockMap.spans, inlined: this is the READ path)
            block, within = divmod(pos, bs)
            count = min(bs - within, end - pos)
            entry = bat[block]
            if entry == UNALLOCATED:
                self._below(parts, pos, count, zero_copy, nowait)
                pos += count
                continue
            data_start = entry * SECTOR + bitmap_size
            bitmap = None if block in full else bitmaps.get(block) or self._bitmap(block, nowait)
            if bitmap is None:
                runs: list[tuple[int, int, bool]] = [(within // SECTOR, (within + count) // SECTOR, True)]
            else:
                runs = BlockMap.runs(bitmap, within // SECTOR, (within + count) // SECTOR)
            for first, last, present in runs:
                start, size = first * SECTOR, (last - first) * SECTOR
                if not present:
                    self._below(parts, block * bs + start, size, zero_copy, nowait)
                elif zero_copy:
                    handle = handle or file_handle(fd, path)
                    add_piece(parts, FileSlice(handle, data_start + start, size))
                else:
                    parts.append(read_at(fd, path, data_start + start, size, nowait))
            pos += count

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        view = memoryview(data).cast("B")
        length = len(view)
        bmap = self._map
        with self._lock:
            at = bmap.present_at(offset, length)
            if at is not None:
                write_at(self._fd, self.path, at, view)
                if durable and not bmap.unsaved:
                    self._sync(data_only=True)
                    return
            else:
                self._check(offset, length)
                bat, full, bs, bitmap_size = bmap.bat, bmap.full, self._block_size, self._bitmap_size
                pos, end = offset, offset + length
                while pos < end:  # block by block (BlockMap.spans, inlined: this is the WRITE path)
                    block, within = divmod(pos, bs)
                    count = min(bs - within, end - pos)
                    chunk = view[pos - offset: pos - offset + count]
                    entry = bat[block]
                    if entry == UNALLOCATED:
                        self._allocate(block, within, chunk)
                    else:
                        write_at(self._fd, self.path, entry * SECTOR + bitmap_size + within, chunk)
                        if block not in full:
                            self._mark(block, within // SECTOR, (within + count) // SECTOR)
                    pos += count
        if durable:  # FUA: this write's data, and the bits that say its sectors are here
            self._save_bitmaps(data_only=True)

    def write_may_block(self, offset: int, length: int) -> bool:
        if length <= 0:
            return False
        first, last = offset // self._block_size, (offset + length - 1) // self._block_size
        bat = self._map.bat
        if first == last:
            return first < len(bat) and bat[first] == UNALLOCATED
        return any(bat[block] == UNALLOCATED for block in range(first, min(last, len(bat) - 1) + 1))

    def unmap(self, offset: int, length: int) -> None:
        if not self.can_unmap:
            raise StoreError(f"{self.path}: cannot unmap")
        self._check(offset, length)
        with self._lock:
            bmap = self._map
            for block, within, count in bmap.spans(offset, length):
                entry = bmap.bat[block]
                if self.footer.disk_type == DIFFERENCING:
                    self._unmap_over_parent(block, within, count)
                elif entry != UNALLOCATED:
                    if count == self._block_size:  # the whole block goes: the BAT forgets it, its space is punched
                        self._set_bat(block, UNALLOCATED)
                        bmap.forget(block)
                        punch_hole(self._fd, entry * SECTOR, self._bitmap_size + self._block_size)
                    else:
                        self._pwrite(bmap.data_at(block) + within, bytes(count))

    def _unmap_over_parent(self, block: int, within: int, count: int) -> None:
        """In a differencing disk an absent sector reads the parent, so unmapped sectors
        become present zeros: a hole in the data area, the bitmap bits set."""
        offset = block * self._block_size + within
        if self._map.bat[block] == UNALLOCATED:
            assert self.parent is not None
            if any(mapped for _, _, mapped in self.parent.extents(offset, count)):
                self._allocate(block, within, memoryview(bytes(count)), sparse=True)
            return  # else the parent reads zeros there already
        start = self._map.data_at(block) + within
        if not punch_hole(self._fd, start, count):
            self._pwrite(start, bytes(count))
        self._mark(block, within // SECTOR, (within + count) // SECTOR)

    def hold_zeros(self, offset: int, length: int) -> None:
        """This layer holds the range's absent sectors itself, as zeros (sparse: a new block's
        data area is a hole): they no longer read the parent. For a disk grown past its
        parent's end, so that readers that always ask the parent for an absent sector
        (libvhdi) never ask it for sectors it does not have. Sectors held keep their data."""
        self._check(offset, length)
        with self._lock:
            for block, within, count in self._map.spans(offset, length):
                if self._map.bat[block] == UNALLOCATED:
                    self._allocate(block, within, memoryview(bytes(count)), sparse=True)
                    continue
                for first, last, present in self._runs(block, within // SECTOR, (within + count) // SECTOR):
                    if not present:
                        start, size = self._map.data_at(block) + first * SECTOR, (last - first) * SECTOR
                        if not punch_hole(self._fd, start, size):
                            self._pwrite(start, bytes(size))
                        self._mark(block, first, last)

    def extents(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        bs = self._block_size
        for block, within, count in self._map.spans(offset, max(0, min(offset + length, self._size) - offset)):
            pos = block * bs + within
            yield pos, count, self._mapped_at(pos)

    def flush(self) -> None:
        if not self._readonly:
            self._save_bitmaps(data_only=False)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                if self._map.unsaved and not self._readonly:
                    self._save_bitmaps(data_only=False)  # a clean stop keeps unflushed writes too
            finally:
                os.close(self._fd)
                self._fd = -1
        if self.parent is not None:
            self.parent.close()

    def _save_bitmaps(self, *, data_only: bool) -> None:
        """Sync the data, then write the bitmap bits that claim it, then sync those."""
        with self._flushing:
            with self._lock:
                unsaved = self._map.take_unsaved()
            try:
                if unsaved:
                    self._sync(data_only=True)
                    for entry, bitmap in unsaved.values():
                        self._pwrite(entry * SECTOR, bitmap)
                self._sync(data_only=data_only)
            except BaseException:
                with self._lock:
                    self._map.unsaved.update(block for block in unsaved if self._map.bat[block] != UNALLOCATED)
                raise

    # ---- internals ----------------------------------------------------------------

    def _check(self, offset: int, length: int) -> None:
        if offset % SECTOR or length % SECTOR or offset < 0 or offset + length > self._size:
            raise StoreError(f"{self.path}: I/O at {offset}+{length} outside the disk or not sector aligned")

    def _mapped_at(self, offset: int) -> bool:
        if self._map.bat[offset // self._block_size] != UNALLOCATED:
            return True
        if self.parent is not None and offset >= self.parent.size:  # grown past its parent: zeros there
            return False
        if isinstance(self.parent, VhdStore):
            return self.parent._mapped_at(offset)
        return self.parent is not None  # a fixed parent holds every block

    def _below(self, parts: list[Piece], offset: int, length: int, zero_copy: bool, nowait: bool = False) -> None:
        """What an unallocated range reads as: the parent's bytes, or zeros (also past the
        end of a parent smaller than this layer: a disk grown after it was made over it)."""
        parent = self.parent
        if parent is not None and offset + length > parent.size:
            inside = max(0, parent.size - offset)
            if inside:
                self._below(parts, offset, inside, zero_copy, nowait)
            parts.append(bytes(length - inside))
            return
        if parent is None:
            parts.append(bytes(length))
        elif zero_copy and isinstance(parent, VhdStore):
            parent._read_into(parts, offset, length, zero_copy=True, nowait=nowait)
        elif zero_copy:
            add_piece(parts, parent.file_slice(offset, length))
        else:
            parts.append(parent.read(offset, length, nowait=nowait))

    def _bitmap(self, block: int, nowait: bool = False) -> bytearray | None:
        """The block's sector bitmap, read in when first needed; None when every bit is set."""
        bmap = self._map
        if block in bmap.full:
            return None
        bitmap = bmap.bitmaps.get(block)
        if bitmap is None:
            raw = read_at(self._fd, self.path, bmap.bat[block] * SECTOR, self._bitmap_size, nowait)
            return bmap.remember(block, bytearray(raw))
        return bitmap

    def _runs(self, block: int, first: int, last: int) -> list[tuple[int, int, bool]]:
        """Runs of present / absent sectors in [first, last), coalesced."""
        bitmap = self._bitmap(block)
        return [(first, last, True)] if bitmap is None else BlockMap.runs(bitmap, first, last)

    def _mark(self, block: int, first: int, last: int) -> None:
        """Set, in memory, the bitmap bits of sectors just written; the next flush saves them."""
        bitmap = self._bitmap(block)
        if bitmap is not None:
            self._map.mark(block, bitmap, first, last)

    def _allocate(self, block: int, within: int, chunk: memoryview, *, sparse: bool = False) -> None:
        """`sparse`: the chunk is zeros and is not written (a new block's data area is
        file space never written, which reads as zeros)."""
        start = self._end
        new_end = start + self._bitmap_size + self._block_size
        self._pwrite(new_end, self.footer.pack())  # 1. footer at the new end
        # In a dynamic disk untouched sectors read the hole (zeros): all present.
        bitmap = self._map.new_bitmap(within, len(chunk), all_present=self.footer.disk_type == DYNAMIC)
        self._pwrite(start, bitmap)  # 2. bitmap and data
        if not sparse:
            self._pwrite(start + self._bitmap_size + within, chunk)
        self._sync(data_only=True)  # 3. on disk before anything points at it
        self._set_bat(block, start // SECTOR)  # 4. the BAT entry
        self._end = new_end
        self._map.remember(block, bitmap)

    def _set_bat(self, block: int, sector: int) -> None:
        self._pwrite(self.header.table_offset + 4 * block, struct.pack(">I", sector))
        self._map.bat[block] = sector

    def _pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        write_at(self._fd, self.path, offset, data)

    def _sync(self, *, data_only: bool) -> None:
        sync(self._fd, self.path, data_only=data_only)
