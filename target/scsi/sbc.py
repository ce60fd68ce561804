"""SBC-3 block commands: capacity, READ/WRITE 6/10/12/16, SYNCHRONIZE CACHE."""

from __future__ import annotations

import struct

from target.scsi import sense as s
from target.scsi.cdb import be, invalid_field, need
from target.scsi.lu import BLOCK_SIZE, LogicalUnit, command

MAX_TRANSFER_BLOCKS = (16 << 20) // BLOCK_SIZE  # matches the transport's per-command buffer cap
OPTIMAL_TRANSFER_BLOCKS = (1 << 20) // BLOCK_SIZE

READ_CAPACITY_10 = 0x25
SERVICE_ACTION_IN_16 = 0x9E
READ_CAPACITY_16 = 0x10  # service action of 0x9E


@command(READ_CAPACITY_10)
def read_capacity_10(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    need(cdb, 10)
    last = lu.block_count - 1
    return s.ScsiResult(data=struct.pack(">II", min(last, 0xFFFFFFFF), BLOCK_SIZE))


@command(SERVICE_ACTION_IN_16)
def service_action_in(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    need(cdb, 16)
    if cdb[1] & 0x1F != READ_CAPACITY_16:
        raise invalid_field(1)
    payload = struct.pack(">QI", lu.block_count - 1, BLOCK_SIZE) + bytes(20)
    return s.ScsiResult(data=payload[: be(cdb, 10, 4)])


def _lba_and_length(cdb: bytes) -> tuple[int, int]:
    opcode = cdb[0]
    if opcode in (0x08, 0x0A):  # 6-byte: 21-bit LBA, length 0 means 256
        need(cdb, 6)
        return be(cdb, 1, 3) & 0x1FFFFF, cdb[4] or 256
    if opcode in (0x28, 0x2A, 0x35):
        need(cdb, 10)
        return be(cdb, 2, 4), be(cdb, 7, 2)
    if opcode in (0xA8, 0xAA):
        need(cdb, 12)
        return be(cdb, 2, 4), be(cdb, 6, 4)
    need(cdb, 16)
    return be(cdb, 2, 8), be(cdb, 10, 4)


def transfer_blocks(cdb: bytes) -> int:
    """Blocks a READ/WRITE 10/12/16 CDB moves (0 if the CDB is too short)."""
    try:
        return _lba_and_length(cdb)[1]
    except s.CheckCondition:
        return 0


def _check_range(lu: LogicalUnit, lba: int, blocks: int) -> None:
    if lba + blocks > lu.block_count:
        raise s.CheckCondition(s.LBA_OUT_OF_RANGE, information=lba)


def _fua(cdb: bytes) -> bool:
    return cdb[0] not in (0x08, 0x0A) and bool(cdb[1] & 0x08)


@command(0x08, 0x28, 0xA8, 0x88)
def read(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cdb)
    if cdb[0] != 0x08 and cdb[1] & 0xE0:  # RDPROTECT: we keep no protection information
        raise invalid_field(1)
    _check_range(lu, lba, blocks)
    if not blocks:
        return s.ScsiResult()
    return s.ScsiResult(data=lu.store.read(lba * BLOCK_SIZE, blocks * BLOCK_SIZE))


@command(0x0A, 0x2A, 0xAA, 0x8A)
def write(lu: LogicalUnit, cdb: bytes, data: bytes | bytearray | None) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cdb)
    if lu.readonly:
        raise s.CheckCondition(s.WRITE_PROTECTED)
    if cdb[0] != 0x0A and cdb[1] & 0xE0:  # WRPROTECT
        raise invalid_field(1)
    _check_range(lu, lba, blocks)
    needed = blocks * BLOCK_SIZE
    payload = memoryview(data or b"")
    # Write only whole blocks the initiator sent; the transport reports the residual.
    usable = min(len(payload), needed) // BLOCK_SIZE * BLOCK_SIZE
    if usable:
        lu.store.write(lba * BLOCK_SIZE, payload[:usable], durable=_fua(cdb))
    return s.ScsiResult(data_out_length=needed)


@command(0x35, 0x91, may_block=True)
def synchronize_cache(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cdb)
    _check_range(lu, lba, blocks)
    lu.store.flush()
    return s.ScsiResult()
