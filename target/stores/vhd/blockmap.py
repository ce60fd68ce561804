"""Where a dynamic or differencing VHD keeps each block: the BAT and the sector bitmaps.

The BlockMap is the in-memory picture; it does no I/O (the store reads bitmaps
in when first needed and writes the BAT and bitmaps in the order its durability
invariants demand). It holds, per block:

- the BAT entry (the block's sector in the file, or UNALLOCATED);
- the sector bitmap once read, except for blocks whose every bit is set: those
  are only in `full`, and read and write with one pread/pwrite (the common case);
- whether bits set in memory are not yet on disk (`unsaved`), for the next flush.

`spans` is the block-by-block walk of a byte range; the store's READ and WRITE
paths inline it (no generator per block on the hot path).
"""

from __future__ import annotations

import re
from array import array
from sys import byteorder
from typing import Iterator

from target.stores.vhd.format import SECTOR, UNALLOCATED

_RUN = re.compile(rb"\xff+|\x00+|[\x01-\xfe]", re.DOTALL)

Span = tuple[int, int, int]  # (block, offset within it, bytes)
SectorRun = tuple[int, int, bool]  # (first sector, past the last, present)


class BlockMap:
    __slots__ = ("bat", "block_size", "bitmap_size", "size", "bitmaps", "full", "unsaved", "ones")

    def __init__(self, bat: array, block_size: int, bitmap_size: int, size: int) -> None:
        self.bat = bat
        self.block_size, self.bitmap_size, self.size = block_size, bitmap_size, size
        self.bitmaps: dict[int, bytearray] = {}
        self.full: set[int] = set()
        self.unsaved: set[int] = set()  # blocks whose bitmap on disk lacks bits set in memory
        # The bitmap bytes of a block whose every sector is present (the padding after them is not looked at).
        self.ones = b"\xff" * (block_size // SECTOR // 8)

    @classmethod
    def from_disk(cls, raw: bytes, block_size: int, bitmap_size: int, size: int) -> "BlockMap":
        """From the BAT as stored (big-endian 32-bit entries)."""
        bat = array("I", raw)
        if byteorder == "little":
            bat.byteswap()
        return cls(bat, block_size, bitmap_size, size)

    # ---- walking a range -----------------------------------------------------------

    def spans(self, offset: int, length: int) -> Iterator[Span]:
        """(block, within, count) for each block the byte range touches, in order."""
        pos, end, bs = offset, offset + length, self.block_size
        while pos < end:
            block, within = divmod(pos, bs)
            count = min(bs - within, end - pos)
            yield block, within, count
            pos += count

    def present_at(self, offset: int, length: int) -> int | None:
        """The file offset of the range when one block, all of whose sectors this
        layer holds, holds all of it: the common case, one pread or pwrite."""
        block, within = divmod(offset, self.block_size)
        if (within + length <= self.block_size and block in self.full and 0 <= offset <= self.size - length
                and not (within | length) % SECTOR):
            entry = self.bat[block]
            if entry != UNALLOCATED:
                return entry * SECTOR + self.bitmap_size + within
        return None

    # ---- the BAT ----------------------------------------------------------------

    def data_at(self, block: int) -> int:
        """Where an allocated block's data starts in the file (after its bitmap)."""
        return self.bat[block] * SECTOR + self.bitmap_size

    def allocated_blocks(self) -> int:
        return sum(1 for entry in self.bat if entry != UNALLOCATED)

    def allocated(self) -> Iterator[int]:
        """The allocated blocks inside the disk's size."""
        for block, entry in enumerate(self.bat[: -(-self.size // self.block_size)]):
            if entry != UNALLOCATED:
                yield block

    # ---- bitmaps -------------------------------------------------------------------

    def is_full(self, bitmap: bytes | bytearray) -> bool:
        return bitmap.startswith(self.ones)

    def remember(self, block: int, bitmap: bytearray) -> bytearray | None:
        """Keep a bitmap just read or made; None (and the block `full`) when every bit is set."""
        if self.is_full(bitmap):
            self.full.add(block)
            self.bitmaps.pop(block, None)
            return None
        self.bitmaps[block] = bitmap
        return bitmap

    def new_bitmap(self, within: int, length: int, *, all_present: bool) -> bytearray:
        """The bitmap of a block being allocated: every sector present (a dynamic disk,
        where the untouched ones read the file's hole: zeros), or those written."""
        bitmap = bytearray(self.bitmap_size)
        if all_present:
            bitmap[: len(self.ones)] = self.ones
        else:
            for sector in range(within // SECTOR, (within + length) // SECTOR):
                bitmap[sector >> 3] |= 0x80 >> (sector & 7)
        return bitmap

    def forget(self, block: int) -> None:
        """The block is no longer allocated (a whole-block unmap)."""
        self.bitmaps.pop(block, None)
        self.full.discard(block)
        self.unsaved.discard(block)

    def mark(self, block: int, bitmap: bytearray, first: int, last: int) -> None:
        """Set, in memory, the bits of sectors [first, last) just written; the next flush saves them.
        `bitmap` is the block's remembered one; the block moves to `full` once every bit is set."""
        changed = False
        whole_first, whole_last = -(-first // 8), last // 8
        if whole_first < whole_last:
            if bitmap.count(0xFF, whole_first, whole_last) != whole_last - whole_first:
                bitmap[whole_first:whole_last] = b"\xff" * (whole_last - whole_first)
                changed = True
            edges = (range(first, whole_first * 8), range(whole_last * 8, last))
        else:
            edges = (range(first, last),)
        for sectors in edges:
            for sector in sectors:
                bit = 0x80 >> (sector & 7)
                if not bitmap[sector >> 3] & bit:
                    bitmap[sector >> 3] |= bit
                    changed = True
        if not changed:
            return  # sectors written before
        self.unsaved.add(block)
        if self.is_full(bitmap):
            self.remember(block, bitmap)  # (it moves the block to `full`)

    def take_unsaved(self) -> dict[int, tuple[int, bytes]]:
        """{block: (BAT entry, bitmap as it is now)} of the blocks with unsaved bits,
        which then count as saved (the caller puts them back if saving fails)."""
        unsaved = {block: (self.bat[block], bytes(self.bitmaps.get(block, self.ones))) for block in self.unsaved}
        self.unsaved.clear()
        return unsaved

    @staticmethod
    def runs(bitmap: bytes | bytearray, first: int, last: int) -> list[SectorRun]:
        """Runs of present / absent sectors in [first, last), coalesced."""
        if first >= last:
            return []
        lo, hi = first >> 3, (last + 7) >> 3
        match = _RUN.match(bitmap, lo, hi)
        byte = bitmap[lo]
        if match is not None and match.end() == hi and (byte == 0xFF or byte == 0x00):
            return [(first, last, byte == 0xFF)]  # one run of whole bytes: the common case
        runs: list[SectorRun] = []
        for match in _RUN.finditer(bitmap, lo, hi):
            at = match.start()
            byte = bitmap[at]
            if byte == 0xFF or byte == 0x00:
                bits = ((at * 8, match.end() * 8, byte == 0xFF),)
            else:
                bits = tuple((at * 8 + bit, at * 8 + bit + 1, bool(byte & (0x80 >> bit))) for bit in range(8))
            for start, stop, present in bits:
                if start < first:
                    start = first
                if stop > last:
                    stop = last
                if start >= stop:
                    continue
                if runs and runs[-1][2] == present and runs[-1][1] == start:
                    runs[-1] = (runs[-1][0], stop, present)
                else:
                    runs.append((start, stop, present))
        return runs
