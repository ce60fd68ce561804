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
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
from array import array
from pathlib import Path, PureWindowsPath
from sys import byteorder
from typing import Iterator

from target.stores.base import StoreError, fsync_dir, pread, store_error
from target.stores.pieces import FileSlice, Piece, Pieces, add_piece, file_handle, sendable
from target.stores.raw import RawStore, punch_hole
from target.stores.vhd.format import (
    DIFFERENCING, DYNAMIC, FIXED, FOOTER_COOKIE, FOOTER_SIZE, HEADER_SIZE, SECTOR, UNALLOCATED, DynamicHeader, Footer,
    VhdFormatError)

log = logging.getLogger("bootsrv.vhd")

# Snapshots stack layers: a golden image's own chain plus a disk's snapshots.
MAX_CHAIN = 64
_RUN = re.compile(rb"\xff+|\x00+|[\x01-\xfe]", re.DOTALL)


def open_vhd(path: str | os.PathLike[str], *, readonly: bool = False) -> "RawStore | VhdStore":
    """A store for any VHD: fixed ones are raw data with a footer behind it."""
    footer = read_footer(path)
    if footer.disk_type == FIXED:
        return FixedVhdStore(path, footer, readonly=readonly)
    return VhdStore(path, readonly=readonly)


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
        try:
            self._fd = os.open(self.path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"cannot open {self.path}: {exc.strerror}") from exc
        try:
            try:  # shared with other readers; `disk extend` needs the file alone
                fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                raise StoreError(f"{self.path} is being changed (bootsrv disk extend); try again") from None
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
        self._bat = array("I", raw)
        if byteorder == "little":
            self._bat.byteswap()
        file_size = os.fstat(self._fd).st_size
        self._end = -(-(file_size - FOOTER_SIZE) // SECTOR) * SECTOR  # where the next block goes
        self._bitmaps: dict[int, bytearray] = {}
        self._full: set[int] = set()
        self._unsaved: set[int] = set()  # blocks whose bitmap on disk lacks bits set in memory
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
        return sum(1 for entry in self._bat if entry != UNALLOCATED)

    def own_runs(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(offset, length, present) runs over [offset, offset+length): present = this
        layer's own file holds the sectors (its parents are not looked at)."""
        self._check(offset, length)
        runs: list[tuple[int, int, bool]] = []
        pos, end, bs = offset, offset + length, self._block_size
        while pos < end:
            block, within = divmod(pos, bs)
            count = min(bs - within, end - pos)
            if self._bat[block] == UNALLOCATED:
                pieces = [(pos, count, False)]
            else:
                pieces = [(block * bs + first * SECTOR, (last - first) * SECTOR, present)
                          for first, last, present in self._runs(block, within // SECTOR, (within + count) // SECTOR)]
            for start, size, present in pieces:
                if runs and runs[-1][2] == present and runs[-1][0] + runs[-1][1] == start:
                    runs[-1] = (runs[-1][0], runs[-1][1] + size, present)
                else:
                    runs.append((start, size, present))
            pos += count
        return runs

    def held_bytes(self) -> int:
        """Bytes of disk data this layer's own file holds (a snapshot's unique data)."""
        total = 0
        for block, entry in enumerate(self._bat[: -(-self._size // self._block_size)]):
            if entry != UNALLOCATED:
                start = block * self._block_size
                length = min(self._block_size, self._size - start)
                total += sum(size for _, size, present in self.own_runs(start, length) if present)
        return total

    def read(self, offset: int, length: int, *, nowait: bool = False) -> bytes | bytearray:
        at = self._in_one_present_block(offset, length)
        if at is not None:
            return self._pread(at, length, nowait)
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
        pos, end, bs = offset, offset + length, self._block_size
        handle = None
        while pos < end:
            block, within = divmod(pos, bs)
            count = min(bs - within, end - pos)
            entry = self._bat[block]
            if entry == UNALLOCATED:
                self._below(parts, pos, count, zero_copy, nowait)
            else:
                data_start = entry * SECTOR + self._bitmap_size
                if block in self._full or self._bitmap(block, nowait) is None:
                    runs = [(within // SECTOR, (within + count) // SECTOR, True)]
                else:
                    runs = self._runs(block, within // SECTOR, (within + count) // SECTOR, nowait)
                for first, last, present in runs:
                    start, size = first * SECTOR, (last - first) * SECTOR
                    if not present:
                        self._below(parts, block * bs + start, size, zero_copy, nowait)
                    elif zero_copy:
                        handle = handle or file_handle(self._fd, self.path)
                        add_piece(parts, FileSlice(handle, data_start + start, size))
                    else:
                        parts.append(self._pread(data_start + start, size, nowait))
            pos += count

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        if self._readonly:
            raise StoreError(f"{self.path} is read-only")
        view = memoryview(data).cast("B")
        length = len(view)
        with self._lock:
            at = self._in_one_present_block(offset, length)
            if at is not None:
                self._pwrite(at, view)
                if durable and not self._unsaved:
                    self._sync(data_only=True)
                    return
        if at is None:
            self._check(offset, length)
            with self._lock:
                pos, end, bs = offset, offset + len(view), self._block_size
                while pos < end:
                    block, within = divmod(pos, bs)
                    count = min(bs - within, end - pos)
                    chunk = view[pos - offset: pos - offset + count]
                    if self._bat[block] == UNALLOCATED:
                        self._allocate(block, within, chunk)
                    else:
                        self._pwrite(self._bat[block] * SECTOR + self._bitmap_size + within, chunk)
                        self._mark(block, within // SECTOR, (within + count) // SECTOR)
                    pos += count
        if durable:  # FUA: this write's data, and the bits that say its sectors are here
            self._save_bitmaps(data_only=True)

    def write_may_block(self, offset: int, length: int) -> bool:
        if length <= 0:
            return False
        first, last = offset // self._block_size, (offset + length - 1) // self._block_size
        bat = self._bat
        if first == last:
            return first < len(bat) and bat[first] == UNALLOCATED
        return any(bat[block] == UNALLOCATED for block in range(first, min(last, len(bat) - 1) + 1))

    def unmap(self, offset: int, length: int) -> None:
        if not self.can_unmap:
            raise StoreError(f"{self.path}: cannot unmap")
        self._check(offset, length)
        with self._lock:
            pos, end, bs = offset, offset + length, self._block_size
            while pos < end:
                block, within = divmod(pos, bs)
                count = min(bs - within, end - pos)
                entry = self._bat[block]
                if self.footer.disk_type == DIFFERENCING:
                    self._unmap_over_parent(block, within, count)
                elif entry != UNALLOCATED:
                    if count == bs:  # the whole block goes: the BAT forgets it, its space is punched
                        self._set_bat(block, UNALLOCATED)
                        self._bitmaps.pop(block, None)
                        self._full.discard(block)
                        self._unsaved.discard(block)
                        punch_hole(self._fd, entry * SECTOR, self._bitmap_size + bs)
                    else:
                        self._pwrite(entry * SECTOR + self._bitmap_size + within, bytes(count))
                pos += count

    def _unmap_over_parent(self, block: int, within: int, count: int) -> None:
        """In a differencing disk an absent sector reads the parent, so unmapped sectors
        become present zeros: a hole in the data area, the bitmap bits set."""
        offset = block * self._block_size + within
        entry = self._bat[block]
        if entry == UNALLOCATED:
            assert self.parent is not None
            if any(mapped for _, _, mapped in self.parent.extents(offset, count)):
                self._allocate(block, within, memoryview(bytes(count)), sparse=True)
            return  # else the parent reads zeros there already
        start = entry * SECTOR + self._bitmap_size + within
        if not punch_hole(self._fd, start, count):
            self._pwrite(start, bytes(count))
        self._mark(block, within // SECTOR, (within + count) // SECTOR)

    def extents(self, offset: int, length: int) -> Iterator[tuple[int, int, bool]]:
        pos, end, bs = offset, min(offset + length, self._size), self._block_size
        while pos < end:
            block, within = divmod(pos, bs)
            count = min(bs - within, end - pos)
            yield pos, count, self._mapped_at(pos)
            pos += count

    def flush(self) -> None:
        if not self._readonly:
            self._save_bitmaps(data_only=False)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                if self._unsaved and not self._readonly:
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
                ones = b"\xff" * (self._block_size // SECTOR // 8)
                unsaved = {block: (self._bat[block], bytes(self._bitmaps.get(block, ones)))
                           for block in self._unsaved}
                self._unsaved.clear()
            try:
                if unsaved:
                    self._sync(data_only=True)
                    for entry, bitmap in unsaved.values():
                        self._pwrite(entry * SECTOR, bitmap)
                self._sync(data_only=data_only)
            except BaseException:
                with self._lock:
                    self._unsaved.update(block for block in unsaved if self._bat[block] != UNALLOCATED)
                raise

    # ---- internals ----------------------------------------------------------------

    def _in_one_present_block(self, offset: int, length: int) -> int | None:
        """The file offset of the range when one block, all of whose sectors this
        layer holds, holds all of it: the common case, one pread or pwrite."""
        block, within = divmod(offset, self._block_size)
        if (within + length <= self._block_size and block in self._full and 0 <= offset <= self._size - length
                and not (within | length) % SECTOR):
            entry = self._bat[block]
            if entry != UNALLOCATED:
                return entry * SECTOR + self._bitmap_size + within
        return None

    def _check(self, offset: int, length: int) -> None:
        if offset % SECTOR or length % SECTOR or offset < 0 or offset + length > self._size:
            raise StoreError(f"{self.path}: I/O at {offset}+{length} outside the disk or not sector aligned")

    def _mapped_at(self, offset: int) -> bool:
        if self._bat[offset // self._block_size] != UNALLOCATED:
            return True
        if isinstance(self.parent, VhdStore):
            return self.parent._mapped_at(offset)
        return self.parent is not None  # a fixed parent holds every block

    def _below(self, parts: list[Piece], offset: int, length: int, zero_copy: bool, nowait: bool = False) -> None:
        """What an unallocated range reads as: the parent's bytes, or zeros."""
        parent = self.parent
        if parent is None:
            parts.append(bytes(length))
        elif isinstance(parent, VhdStore):
            parent._read_into(parts, offset, length, zero_copy=zero_copy, nowait=nowait)
        elif zero_copy:
            add_piece(parts, parent.file_slice(offset, length))
        else:
            parts.append(parent.read(offset, length, nowait=nowait))

    def _bitmap(self, block: int, nowait: bool = False) -> bytearray | None:
        """The block's sector bitmap; None (and remembered) when every bit is set."""
        if block in self._full:
            return None
        bitmap = self._bitmaps.get(block)
        if bitmap is None:
            bitmap = bytearray(self._pread(self._bat[block] * SECTOR, self._bitmap_size, nowait))
            sectors = self._block_size // SECTOR
            if bitmap[: sectors // 8] == b"\xff" * (sectors // 8):
                self._full.add(block)
                return None
            self._bitmaps[block] = bitmap
        return bitmap

    def _runs(self, block: int, first: int, last: int, nowait: bool = False) -> list[tuple[int, int, bool]]:
        """Runs of present / absent sectors in [first, last), coalesced."""
        bitmap = self._bitmap(block, nowait)
        if bitmap is None:
            return [(first, last, True)]
        runs: list[tuple[int, int, bool]] = []

        def add(start: int, stop: int, present: bool) -> None:
            start, stop = max(start, first), min(stop, last)
            if start >= stop:
                return
            if runs and runs[-1][2] == present and runs[-1][1] == start:
                runs[-1] = (runs[-1][0], stop, present)
            else:
                runs.append((start, stop, present))

        for match in _RUN.finditer(bitmap, first // 8, -(-last // 8)):
            start, stop = match.start() * 8, match.end() * 8
            byte = bitmap[match.start()]
            if byte in (0x00, 0xFF):
                add(start, stop, byte == 0xFF)
            else:
                for bit in range(8):
                    add(start + bit, start + bit + 1, bool(byte & (0x80 >> bit)))
        return runs

    def _mark(self, block: int, first: int, last: int) -> None:
        """Set, in memory, the bitmap bits of sectors just written; the next flush saves them."""
        bitmap = self._bitmap(block)
        if bitmap is None:
            return
        changed = False
        whole_first, whole_last = -(-first // 8), last // 8
        if whole_first < whole_last:
            if bitmap[whole_first:whole_last].count(0xFF) != whole_last - whole_first:
                bitmap[whole_first:whole_last] = b"\xff" * (whole_last - whole_first)
                changed = True
            edges = [*range(first, whole_first * 8), *range(whole_last * 8, last)]
        else:
            edges = range(first, last)
        for sector in edges:
            bit = 0x80 >> (sector & 7)
            if not bitmap[sector >> 3] & bit:
                bitmap[sector >> 3] |= bit
                changed = True
        if not changed:
            return  # sectors written before
        self._unsaved.add(block)
        sectors = self._block_size // SECTOR
        if bitmap[: sectors // 8] == b"\xff" * (sectors // 8):
            self._full.add(block)
            del self._bitmaps[block]

    def _allocate(self, block: int, within: int, chunk: memoryview, *, sparse: bool = False) -> None:
        """`sparse`: the chunk is zeros and is not written (a new block's data area is
        file space never written, which reads as zeros)."""
        start = self._end
        new_end = start + self._bitmap_size + self._block_size
        self._pwrite(new_end, self.footer.pack())  # 1. footer at the new end
        bitmap = bytearray(self._bitmap_size)
        sectors = self._block_size // SECTOR
        if self.footer.disk_type == DYNAMIC:
            bitmap[: sectors // 8] = b"\xff" * (sectors // 8)  # untouched sectors read the hole: zeros
        else:
            for sector in range(within // SECTOR, (within + len(chunk)) // SECTOR):
                bitmap[sector >> 3] |= 0x80 >> (sector & 7)
        self._pwrite(start, bitmap)  # 2. bitmap and data
        if not sparse:
            self._pwrite(start + self._bitmap_size + within, chunk)
        self._sync(data_only=True)  # 3. on disk before anything points at it
        self._set_bat(block, start // SECTOR)  # 4. the BAT entry
        self._end = new_end
        if self.footer.disk_type == DYNAMIC:
            self._full.add(block)
        else:
            self._bitmaps[block] = bitmap
            if bitmap[: sectors // 8] == b"\xff" * (sectors // 8):
                self._full.add(block)
                del self._bitmaps[block]

    def _set_bat(self, block: int, sector: int) -> None:
        self._pwrite(self.header.table_offset + 4 * block, struct.pack(">I", sector))
        self._bat[block] = sector

    def _pread(self, offset: int, length: int, nowait: bool = False) -> bytes | bytearray:
        try:
            data = pread(self._fd, length, offset, nowait)
        except OSError as exc:
            raise StoreError(f"read of {self.path} at {offset}: {exc.strerror}") from exc
        return data if len(data) == length else data.ljust(length, b"\0")

    def _pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self._fd, view, offset)
                view, offset = view[written:], offset + written
        except OSError as exc:
            raise store_error(f"write to {self.path} at {offset}", exc) from exc

    def _sync(self, *, data_only: bool) -> None:
        try:
            (os.fdatasync if data_only else os.fsync)(self._fd)
        except OSError as exc:
            raise store_error(f"flush of {self.path}", exc) from exc

