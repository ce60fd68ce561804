"""The VHD BlockMap: the block walk, sector runs and when a block counts as full."""

from array import array

from target.stores.vhd.blockmap import BlockMap
from target.stores.vhd.format import SECTOR, UNALLOCATED

BLOCK = 4096  # 8 sectors: a bitmap of one byte


def fresh(blocks=4):
    return BlockMap(array("I", [UNALLOCATED] * blocks), BLOCK, SECTOR, blocks * BLOCK)


def test_spans_cut_a_range_at_block_edges():
    assert list(fresh().spans(BLOCK - SECTOR, 2 * BLOCK)) == [(0, BLOCK - SECTOR, SECTOR), (1, 0, BLOCK),
                                                              (2, 0, BLOCK - SECTOR)]
    assert list(fresh().spans(0, 0)) == []


def test_runs_coalesce_present_and_absent_sectors():
    bitmap = bytearray(SECTOR)
    bitmap[0] = 0b1110_0001
    assert BlockMap.runs(bitmap, 0, 8) == [(0, 3, True), (3, 7, False), (7, 8, True)]
    assert BlockMap.runs(bitmap, 1, 5) == [(1, 3, True), (3, 5, False)]
    assert BlockMap.runs(bitmap, 4, 4) == []


def test_runs_of_whole_bytes_are_one_run_cut_to_the_range():
    bitmap = bytearray([0xFF, 0xFF, 0x00, 0x0F])
    assert BlockMap.runs(bitmap, 3, 13) == [(3, 13, True)]
    assert BlockMap.runs(bitmap, 17, 23) == [(17, 23, False)]
    assert BlockMap.runs(bitmap, 12, 30) == [(12, 16, True), (16, 28, False), (28, 30, True)]


def test_marking_every_sector_makes_the_block_full_and_unsaved():
    bmap = fresh()
    bmap.bat[1] = 100
    bitmap = bmap.new_bitmap(0, 2 * SECTOR, all_present=False)
    assert bmap.remember(1, bitmap) is bitmap and 1 not in bmap.full
    assert bmap.present_at(BLOCK, SECTOR) is None  # not full: the bitmap must be asked
    bmap.mark(1, bitmap, 2, 8)
    assert 1 in bmap.full and 1 in bmap.unsaved and 1 not in bmap.bitmaps
    assert bmap.present_at(BLOCK + SECTOR, SECTOR) == 100 * SECTOR + SECTOR + SECTOR
    assert bmap.take_unsaved() == {1: (100, b"\xff")} and not bmap.unsaved


def test_marking_sectors_written_before_changes_nothing():
    bmap = fresh()
    bitmap = bytearray(SECTOR)
    bitmap[0] = 0b1100_0000
    bmap.remember(0, bitmap)
    bmap.mark(0, bitmap, 0, 2)
    assert not bmap.unsaved


def test_marking_some_sectors_keeps_the_bitmap_until_it_is_all_ones():
    bmap = fresh()
    bitmap = bmap.new_bitmap(0, SECTOR, all_present=False)
    bmap.remember(0, bitmap)
    bmap.mark(0, bitmap, 1, 7)
    assert bitmap[0] == 0b1111_1110 and bmap.bitmaps[0] is bitmap and 0 not in bmap.full and 0 in bmap.unsaved
    bmap.mark(0, bitmap, 7, 8)
    assert 0 in bmap.full and 0 not in bmap.bitmaps


def test_a_dynamic_disks_new_block_is_full():
    bmap = fresh()
    assert bmap.remember(2, bmap.new_bitmap(SECTOR, SECTOR, all_present=True)) is None
    assert 2 in bmap.full
