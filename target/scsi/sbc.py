"""SBC-3 block commands: capacity, READ/WRITE, VERIFY, WRITE AND VERIFY,
COMPARE AND WRITE, ORWRITE, WRITE SAME, UNMAP, GET LBA STATUS, PRE-FETCH,
SYNCHRONIZE CACHE, START STOP UNIT, READ DEFECT DATA."""

from __future__ import annotations

import struct

from target.scsi import sense as s
from target.scsi.cdb import be, invalid_field, need
from target.scsi.lu import BLOCK_SIZE, LogicalUnit
from target.scsi.registry import PENDING, Access, Command, command
from target.stores.base import WouldBlock

MAX_TRANSFER_BLOCKS = (64 << 20) // BLOCK_SIZE  # matches the transport's per-command buffer cap
OPTIMAL_TRANSFER_BLOCKS = (1 << 20) // BLOCK_SIZE
# From here up a read is sent from the page cache by sendfile; below, one pread and
# a gathered write cost less than the descriptor duplicate and the extra system call.
ZERO_COPY_BLOCKS = (64 << 10) // BLOCK_SIZE
MAX_COMPARE_AND_WRITE_BLOCKS = 255
MAX_WRITE_SAME_BLOCKS = (256 << 20) // BLOCK_SIZE
MAX_UNMAP_BLOCKS = 1 << 20  # 512 MiB; iscsi-test-cu holds targets to at most 1M blocks
MAX_UNMAP_DESCRIPTORS = 256
UNMAP_GRANULARITY = 4096 // BLOCK_SIZE  # a file system block: smaller holes read as zeros but stay mapped

MISCOMPARE_DURING_VERIFY = (s.MISCOMPARE, 0x1D, 0x00)
MEDIUM_REMOVAL_PREVENTED = (s.ILLEGAL_REQUEST, 0x53, 0x02)

READ_CAPACITY_10 = 0x25
SERVICE_ACTION_IN_16 = 0x9E
READ_CAPACITY_16 = 0x10  # service actions of 0x9E
GET_LBA_STATUS = 0x12

_RW_USAGE = {6: "oo1fffffff07", 10: "oofaffffffff1fffff07", 12: "oofaffffffffffffffff1f07",
             16: "oofaffffffffffffffffffffffff1f07"}


# ---- CDB decoding ------------------------------------------------------------

_CDB_SIZE_BY_GROUP = (6, 10, 10, 16, 16, 12, 16, 16)  # SBC-3 4.2.2, by opcode >> 5
_U32 = struct.Struct(">I")
_LBA10 = struct.Struct(">2xIxH")
_LBA16 = struct.Struct(">2xQI")


def _lba_and_length(cdb: bytes) -> tuple[int, int]:
    """(LBA, blocks) of the 6/10/12/16-byte CDB forms (SBC-3 4.2.2)."""
    size = _CDB_SIZE_BY_GROUP[cdb[0] >> 5]
    if len(cdb) < size:
        raise s.CheckCondition(s.INVALID_FIELD_IN_CDB)
    if size == 10:  # READ(10) and WRITE(10) first: what initiators send most
        return _LBA10.unpack_from(cdb)
    if size == 16:
        return _LBA16.unpack_from(cdb)
    if size == 6:  # 21-bit LBA, length 0 means 256
        return be(cdb, 1, 3) & 0x1FFFFF, cdb[4] or 256
    return _U32.unpack_from(cdb, 2)[0], _U32.unpack_from(cdb, 6)[0]


def transfer_range(cdb: bytes) -> tuple[int, int]:
    """(LBA, blocks) of a READ/WRITE CDB ((0, 0) if the CDB is too short)."""
    try:
        return _lba_and_length(cdb)
    except s.CheckCondition:
        return 0, 0


def first_difference(a: bytes | memoryview, b: bytes | memoryview) -> int:
    """Offset of the first differing byte (block by block, then byte by byte)."""
    a, b = memoryview(a), memoryview(b)
    for start in range(0, min(len(a), len(b)), BLOCK_SIZE):
        if a[start:start + BLOCK_SIZE] != b[start:start + BLOCK_SIZE]:
            return next(i for i in range(start, start + BLOCK_SIZE) if a[i] != b[i])
    return min(len(a), len(b))


def _check_range(lu: LogicalUnit, lba: int, blocks: int) -> None:
    if lba + blocks > lu.block_count:
        raise s.CheckCondition(s.LBA_OUT_OF_RANGE, information=lba)


def _no_protection(cdb: bytes) -> None:
    """RDPROTECT/WRPROTECT/VRPROTECT must be zero: we keep no protection information."""
    if cdb[0] not in (0x08, 0x0A) and cdb[1] & 0xE0:
        raise invalid_field(1)


def _fua(lu: LogicalUnit, cdb: bytes) -> bool:
    return not lu.write_cache or (cdb[0] not in (0x08, 0x0A) and bool(cdb[1] & 0x08))


def _writable(lu: LogicalUnit) -> None:
    if lu.readonly:
        raise s.CheckCondition(s.WRITE_PROTECTED)


def _payload(cmd: Command, length: int) -> memoryview:
    data = memoryview(cmd.data or b"")
    if len(data) < length:  # the initiator sent less than the CDB asks for
        raise s.CheckCondition(s.INVALID_FIELD_IN_CDB)
    return data[:length]


# ---- capacity ------------------------------------------------------------------

@command(READ_CAPACITY_10, access=Access.NONE, usage="oo00ffffffff00000107")
def read_capacity_10(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    need(cmd.cdb, 10)
    last = lu.block_count - 1
    return s.ScsiResult(data=struct.pack(">II", min(last, 0xFFFFFFFF), BLOCK_SIZE))


@command(SERVICE_ACTION_IN_16, access=Access.NONE, service_actions=(READ_CAPACITY_16, GET_LBA_STATUS),
         usage="oo1fffffffffffffffffffffffff0007")
def service_action_in(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 16)
    action = cdb[1] & 0x1F
    if action == READ_CAPACITY_16:
        lbp = 0x80 | 0x40 if lu.store.can_unmap else 0  # LBPME, LBPRZ
        payload = struct.pack(">QIBBH", lu.block_count - 1, BLOCK_SIZE, 0, 0, lbp << 8) + bytes(16)
        return s.ScsiResult(data=payload[: be(cdb, 10, 4)])
    if action == GET_LBA_STATUS:
        return _get_lba_status(lu, cdb)
    raise invalid_field(1)


def _get_lba_status(lu: LogicalUnit, cdb: bytes) -> s.ScsiResult:
    lba, allocation = be(cdb, 2, 8), be(cdb, 10, 4)
    if lba >= lu.block_count:
        raise s.CheckCondition(s.LBA_OUT_OF_RANGE, information=lba)
    span = min(lu.block_count - lba, 1 << 20) * BLOCK_SIZE
    descriptors = b""
    for offset, length, mapped in lu.store.extents(lba * BLOCK_SIZE, span):
        descriptors += struct.pack(">QIB3x", offset // BLOCK_SIZE, length // BLOCK_SIZE, 0 if mapped else 1)
        if len(descriptors) >= 64 * 16:
            break
    payload = struct.pack(">I4x", len(descriptors) + 4) + descriptors
    return s.ScsiResult(data=payload[:allocation])


# ---- reads and writes ------------------------------------------------------------

def _data_in(data: bytes) -> s.ScsiResult:
    return s.ScsiResult(data=data)


@command(0x08, 0x28, 0xA8, 0x88, access=Access.READ, submits=True,
         usage=" ".join(_RW_USAGE[n] for n in (6, 10, 12, 16)))
def read(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cmd.cdb)
    _no_protection(cmd.cdb)
    _check_range(lu, lba, blocks)
    if not blocks:
        return s.ScsiResult()
    if cmd.done is not None and lu.submits_io:
        lu.store.submit_read(lba * BLOCK_SIZE, blocks * BLOCK_SIZE,  # type: ignore[attr-defined]
                             lu.completion(cmd, reading=True, result=_data_in))
        return PENDING
    if cmd.zero_copy and blocks >= ZERO_COPY_BLOCKS:
        return s.ScsiResult(data=lu.store.read_pieces(lba * BLOCK_SIZE, blocks * BLOCK_SIZE, nowait=cmd.nowait))
    return s.ScsiResult(data=lu.store.read(lba * BLOCK_SIZE, blocks * BLOCK_SIZE, nowait=cmd.nowait))


@command(0x0A, 0x2A, 0xAA, 0x8A, access=Access.WRITE, submits=True,
         usage=" ".join(_RW_USAGE[n] for n in (6, 10, 12, 16)))
def write(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cmd.cdb)
    _writable(lu)
    _no_protection(cmd.cdb)
    _check_range(lu, lba, blocks)
    needed = blocks * BLOCK_SIZE
    payload = memoryview(cmd.data or b"")
    # Write only whole blocks the initiator sent; the transport reports the residual.
    usable = min(len(payload), needed) // BLOCK_SIZE * BLOCK_SIZE
    if usable and cmd.done is not None and lu.submits_io:
        _submit_write(lu, cmd, lba * BLOCK_SIZE, payload[:usable], s.ScsiResult(data_out_length=needed))
        return PENDING
    if usable:
        with lu.write_lock:
            lu.store.write(lba * BLOCK_SIZE, payload[:usable], durable=_fua(lu, cmd.cdb))
    return s.ScsiResult(data_out_length=needed)


def _submit_write(lu: LogicalUnit, cmd: Command, offset: int, data: memoryview, good: s.ScsiResult) -> None:
    """Writes run side by side (the initiator orders SIMPLE tasks), but never beside a
    COMPARE AND WRITE: while one holds the write lock, the write waits on a thread instead."""
    writes = lu.submitted_writes
    if not writes.try_start(lu.write_lock):
        raise WouldBlock
    try:
        lu.store.submit_write(offset, data, lu.completion(cmd, reading=False, result=lambda _: good,  # type: ignore[attr-defined]
                                                          after=writes.finished), durable=_fua(lu, cmd.cdb))
    except BaseException:
        writes.finished()
        raise


@command(0x2E, 0xAE, 0x8E, access=Access.WRITE, submits=True,
         usage="oof2ffffffff1fffff07 oof2ffffffffffffffff1f07 oof2ffffffffffffffffffffffff1f07")
def write_and_verify(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    # The write goes through the same page cache the verify would read: writing is verifying.
    return write(lu, cmd)


def _verify_bytchk(lu: LogicalUnit, cmd: Command, lba: int, blocks: int) -> None:
    bytchk = (cmd.cdb[1] >> 1) & 0x03
    if bytchk == 0 or not blocks:
        return  # medium verification only: our medium is always readable
    if bytchk == 2:
        raise invalid_field(1)
    if bytchk == 1:
        expected = _payload(cmd, blocks * BLOCK_SIZE)
    else:  # 11b: one block, compared with every block of the range
        expected = memoryview(bytes(_payload(cmd, BLOCK_SIZE)) * blocks)
    actual = lu.store.read(lba * BLOCK_SIZE, blocks * BLOCK_SIZE)
    if actual != expected:
        raise s.CheckCondition(MISCOMPARE_DURING_VERIFY, information=first_difference(actual, expected))


@command(0x2F, 0xAF, 0x8F, access=Access.READ,
         usage="oof6ffffffff1fffff07 oof6ffffffffffffffff1f07 oof6ffffffffffffffffffffffff1f07")
def verify(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cmd.cdb)
    _no_protection(cmd.cdb)
    _check_range(lu, lba, blocks)
    _verify_bytchk(lu, cmd, lba, blocks)
    return s.ScsiResult()


@command(0x89, access=Access.WRITE, usage="oofaffffffffffffffff000000ff1f07")
def compare_and_write(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 16)
    lba, blocks = be(cdb, 2, 8), cdb[13]
    _writable(lu)
    _no_protection(cdb)
    if blocks > MAX_COMPARE_AND_WRITE_BLOCKS or (not blocks and cmd.data):
        # Zero blocks with data attached: the initiator meant 256 and the byte wrapped.
        raise invalid_field(13)
    _check_range(lu, lba, blocks)
    if not blocks:
        return s.ScsiResult()
    size = blocks * BLOCK_SIZE
    payload = _payload(cmd, 2 * size)
    with lu.exclusive_write():  # atomic against every other write to the unit
        current = lu.store.read(lba * BLOCK_SIZE, size)
        if current != payload[:size]:
            raise s.CheckCondition(MISCOMPARE_DURING_VERIFY, information=first_difference(current, payload))
        lu.store.write(lba * BLOCK_SIZE, payload[size:], durable=_fua(lu, cdb))
    return s.ScsiResult(data_out_length=2 * size)


@command(0x8B, access=Access.WRITE, usage="oofaffffffffffffffffffffffff1f07")
def orwrite(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cmd.cdb)
    _writable(lu)
    _no_protection(cmd.cdb)
    _check_range(lu, lba, blocks)
    if not blocks:
        return s.ScsiResult()
    size = blocks * BLOCK_SIZE
    payload = _payload(cmd, size)
    with lu.exclusive_write():
        current = lu.store.read(lba * BLOCK_SIZE, size)
        merged = (int.from_bytes(current, "big") | int.from_bytes(payload, "big")).to_bytes(size, "big")
        lu.store.write(lba * BLOCK_SIZE, merged, durable=_fua(lu, cmd.cdb))
    return s.ScsiResult(data_out_length=size)


# ---- provisioning -------------------------------------------------------------------

@command(0x41, 0x93, access=Access.WRITE,
         usage="oofbffffffff1fffff07 oof9ffffffffffffffffffffffff1f07")
def write_same(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    lba, blocks = _lba_and_length(cdb)
    _writable(lu)
    _no_protection(cdb)
    unmap, anchor = bool(cdb[1] & 0x08), bool(cdb[1] & 0x10)
    ndob = cdb[0] == 0x93 and bool(cdb[1] & 0x01)
    if anchor or (cdb[1] & 0x06):  # ANCHOR (no anchored state) or obsolete PBDATA/LBDATA
        raise invalid_field(1)
    if blocks == 0 or blocks > MAX_WRITE_SAME_BLOCKS:
        raise invalid_field(7 if cdb[0] == 0x41 else 10)  # WSNZ=1 in the Block Limits VPD
    _check_range(lu, lba, blocks)
    pattern = bytes(BLOCK_SIZE) if ndob else bytes(_payload(cmd, BLOCK_SIZE))
    offset, size = lba * BLOCK_SIZE, blocks * BLOCK_SIZE
    with lu.write_lock:
        if unmap and lu.store.can_unmap and not any(pattern):
            lu.store.unmap(offset, size)
        else:
            chunk = pattern * min(blocks, 2048)  # write 1 MiB at a time
            for start in range(0, size, len(chunk)):
                lu.store.write(offset + start, chunk[: min(len(chunk), size - start)])
        if not lu.write_cache:
            lu.store.flush()
    return s.ScsiResult(data_out_length=0 if ndob else BLOCK_SIZE)


@command(0x42, access=Access.WRITE, usage="oo01000000001fffff07")
def unmap(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 10)
    _writable(lu)
    if not lu.store.can_unmap:
        raise s.CheckCondition(s.INVALID_COMMAND_OPERATION_CODE)
    if cdb[1] & 0x01:  # ANCHOR
        raise invalid_field(1)
    length = be(cdb, 7, 2)
    if length == 0:
        return s.ScsiResult()
    data = bytes(cmd.data or b"")[:length]
    if length < 8 or len(data) < 8:
        raise s.CheckCondition(s.PARAMETER_LIST_LENGTH_ERROR)
    descriptors_len = be(data, 2, 2)
    if descriptors_len > len(data) - 8 or descriptors_len % 16:
        raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
    ranges = []
    for pos in range(8, 8 + descriptors_len, 16):
        lba, blocks = be(data, pos, 8), be(data, pos + 8, 4)
        if blocks > MAX_UNMAP_BLOCKS:
            raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
        _check_range(lu, lba, blocks)
        ranges.append((lba, blocks))
    if len(ranges) > MAX_UNMAP_DESCRIPTORS:
        raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
    with lu.write_lock:
        for lba, blocks in _joined(ranges):
            lu.store.unmap(lba * BLOCK_SIZE, blocks * BLOCK_SIZE)
    return s.ScsiResult()


def _joined(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """UNMAP descriptors as the fewest (lba, blocks) runs: touching and overlapping ones
    joined, empty ones dropped. One store call per run, which matters where each call is
    a network round trip (RBD: one descriptor per block took 3 ms a block)."""
    runs: list[tuple[int, int]] = []
    for lba, blocks in sorted(r for r in ranges if r[1]):
        if runs and lba <= runs[-1][0] + runs[-1][1]:
            start, length = runs[-1]
            runs[-1] = (start, max(length, lba + blocks - start))
        else:
            runs.append((lba, blocks))
    return runs


# ---- cache and medium ------------------------------------------------------------------

@command(0x34, 0x90, access=Access.READ,
         usage="oo02ffffffff1fffff07 oo02ffffffffffffffffffffffff1f07")
def prefetch(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cmd.cdb)
    _check_range(lu, lba, blocks)
    # Nothing to stage: the host's page cache does it. CONDITION MET would promise
    # the blocks fit a cache we do not manage; GOOD is what SBC-3 allows then.
    return s.ScsiResult()


def _good(_: object) -> s.ScsiResult:
    return s.ScsiResult()


@command(0x35, 0x91, access=Access.WRITE, may_block=True, submits=True,
         usage="oo06ffffffff1fffff07 oo06ffffffffffffffffffffffff1f07")
def synchronize_cache(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    lba, blocks = _lba_and_length(cmd.cdb)
    _check_range(lu, lba, blocks)
    if cmd.done is not None and lu.submits_io:  # every write answered before this is then durable
        lu.store.submit_flush(lu.completion(cmd, reading=False, result=_good))  # type: ignore[attr-defined]
        return PENDING
    lu.store.flush()
    return s.ScsiResult()


@command(0x1B, access=Access.WRITE, usage="oo01000ff707")
def start_stop_unit(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 6)
    power_condition, load_eject, start = cdb[4] >> 4, bool(cdb[4] & 0x02), bool(cdb[4] & 0x01)
    if power_condition == 0 and load_eject and not start and lu.prevent:
        raise s.CheckCondition(MEDIUM_REMOVAL_PREVENTED)
    return s.ScsiResult()  # a virtual disk neither spins nor ejects


@command(0x37, 0xB7, access=Access.READ, usage="oo001f00000000ffff07 oo1f00000000ffffffff0007")
def read_defect_data(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    if cdb[0] == 0x37:
        need(cdb, 10)
        header = bytes((0, cdb[2] & 0x1F, 0, 0))  # echo the list format; no defects
        return s.ScsiResult(data=header[: be(cdb, 7, 2)])
    need(cdb, 12)
    header = bytes((0, cdb[1] & 0x1F, 0, 0, 0, 0, 0, 0))
    return s.ScsiResult(data=header[: be(cdb, 6, 4)])
