"""SPC-4 primary commands for a direct-access disk: INQUIRY and its VPD pages,
MODE SENSE, REQUEST SENSE, TEST UNIT READY."""

from __future__ import annotations

import struct

from target.scsi import sense as s
from target.scsi.cdb import be, invalid_field, need, truncate
from target.scsi.lu import BLOCK_SIZE, MODE_PARAMETERS_CHANGED, LogicalUnit
from target.scsi.registry import HANDLERS, Access, Command, command
from target.scsi.sbc import (MAX_COMPARE_AND_WRITE_BLOCKS, MAX_TRANSFER_BLOCKS, MAX_UNMAP_BLOCKS,
                             MAX_UNMAP_DESCRIPTORS, MAX_WRITE_SAME_BLOCKS, OPTIMAL_TRANSFER_BLOCKS,
                             UNMAP_GRANULARITY)

TEST_UNIT_READY = 0x00
REQUEST_SENSE = 0x03
INQUIRY = 0x12
MODE_SENSE_6 = 0x1A
MODE_SENSE_10 = 0x5A

# Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3
_VERSION_DESCRIPTORS = (0x00A0, 0x0960, 0x0460, 0x04C0)
ISCSI_PROTOCOL_ID = 0x5


@command(TEST_UNIT_READY, access=Access.NONE, usage="oo0000000007")
def test_unit_ready(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    return s.ScsiResult()


@command(REQUEST_SENSE, access=Access.NONE, reports_ua=False, usage="oo01000000ff07")
def request_sense(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 6)
    key, asc, ascq = lu.take_unit_attention(cmd.nexus) or (s.NO_SENSE, 0, 0)  # a UA is reported, then gone
    if cdb[1] & 0x01:  # DESC: descriptor format, no descriptors
        payload = bytes((0x72, key, asc, ascq, 0, 0, 0, 0))
    else:
        payload = s.fixed_sense(key, asc, ascq)
    return s.ScsiResult(data=truncate(payload, cdb[4]))


def standard_inquiry(lu: LogicalUnit) -> bytes:
    data = bytearray(96)
    data[0] = 0x00  # connected direct-access block device
    data[2] = 0x06  # SPC-4
    data[3] = 0x12  # HiSup, response data format 2
    data[4] = len(data) - 5
    data[7] = 0x02  # CmdQue
    data[8:16] = lu.vendor.ljust(8).encode()[:8]
    data[16:32] = lu.product.ljust(16).encode()[:16]
    data[32:36] = lu.revision.ljust(4).encode()[:4]
    for i, descriptor in enumerate(_VERSION_DESCRIPTORS):
        struct.pack_into(">H", data, 58 + 2 * i, descriptor)
    return bytes(data)


@command(INQUIRY, access=Access.NONE, reports_ua=False, usage="oo01ffffff07")
def inquiry(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 6)
    evpd, page, allocation = cdb[1] & 0x01, cdb[2], be(cdb, 3, 2)
    if cdb[1] & 0xFE:
        raise invalid_field(1)
    if not evpd:
        if page:
            raise invalid_field(2)
        return s.ScsiResult(data=truncate(standard_inquiry(lu), allocation))
    builder = VPD_PAGES.get(page)
    if builder is None:
        raise invalid_field(2)
    body = builder(lu)
    payload = bytes((0x00, page)) + struct.pack(">H", len(body)) + body
    return s.ScsiResult(data=truncate(payload, allocation))


def _supported_pages(lu: LogicalUnit) -> bytes:
    return bytes(sorted(VPD_PAGES))


def _unit_serial(lu: LogicalUnit) -> bytes:
    return lu.serial.encode()


def _designator(code_set: int, kind: int, value: bytes, *, association: int = 0, piv: bool = False) -> bytes:
    proto = ISCSI_PROTOCOL_ID << 4 if piv else 0
    return bytes((proto | code_set, (0x80 if piv else 0) | association << 4 | kind, 0, len(value))) + value


def _scsi_name(name: str) -> bytes:
    raw = name.encode() + b"\0"
    return raw + b"\0" * (-len(raw) % 4)


def _device_identification(lu: LogicalUnit) -> bytes:
    parts = [
        _designator(1, 3, lu.naa_id),  # NAA, logical unit
        _designator(2, 1, lu.vendor.ljust(8).encode()[:8] + lu.serial.encode()),  # T10 vendor ID
        _designator(1, 4, struct.pack(">HH", 0, 1), association=1, piv=True),  # relative target port 1
    ]
    if lu.target_name:
        parts.append(_designator(3, 8, _scsi_name(f"{lu.target_name},t,0x0001"), association=1, piv=True))
        parts.append(_designator(3, 8, _scsi_name(lu.target_name), association=2, piv=True))
    return b"".join(parts)


def _block_limits(lu: LogicalUnit) -> bytes:
    body = bytearray(0x3C)
    body[0] = 0x01  # WSNZ: WRITE SAME of zero blocks is refused, not "to the end of the disk"
    body[1] = MAX_COMPARE_AND_WRITE_BLOCKS
    struct.pack_into(">H", body, 2, 1)  # optimal transfer length granularity (blocks)
    struct.pack_into(">I", body, 4, MAX_TRANSFER_BLOCKS)
    struct.pack_into(">I", body, 8, OPTIMAL_TRANSFER_BLOCKS)
    if lu.store.can_unmap:
        struct.pack_into(">II", body, 16, MAX_UNMAP_BLOCKS, MAX_UNMAP_DESCRIPTORS)
        struct.pack_into(">I", body, 24, UNMAP_GRANULARITY)
    struct.pack_into(">Q", body, 32, MAX_WRITE_SAME_BLOCKS)
    return bytes(body)


def _block_device_characteristics(lu: LogicalUnit) -> bytes:
    body = bytearray(0x3C)
    struct.pack_into(">H", body, 0, 1)  # medium rotation rate 1: non-rotating
    return bytes(body)


def _logical_block_provisioning(lu: LogicalUnit) -> bytes:
    if not lu.store.can_unmap:
        return bytes(4)  # fully provisioned: every bit zero says so
    # LBPU, LBPWS, LBPWS10, LBPRZ (unmapped blocks read as zeros); thin provisioned.
    return bytes((0, 0x80 | 0x40 | 0x20 | 0x04, 0x02, 0))


VPD_PAGES = {
    0x00: _supported_pages,
    0x80: _unit_serial,
    0x83: _device_identification,
    0xB0: _block_limits,
    0xB1: _block_device_characteristics,
    0xB2: _logical_block_provisioning,
}


# ---- MODE SENSE -------------------------------------------------------------

def _caching_page(lu: LogicalUnit, changeable: bool) -> bytes:
    page = bytearray(20)
    page[0], page[1] = 0x08, 0x12
    # WCE: writes are cached until SYNCHRONIZE CACHE or FUA; the one bit MODE SELECT may change.
    if changeable or lu.write_cache:
        page[2] = 0x04
    return bytes(page)


def _control_page(lu: LogicalUnit, changeable: bool) -> bytes:
    page = bytearray(12)
    page[0], page[1] = 0x0A, 0x0A
    if not changeable:
        page[3] = 0x10  # queue algorithm modifier 1: unrestricted reordering
        struct.pack_into(">H", page, 8, 0xFFFF)  # busy timeout: unlimited
    return bytes(page)


def _informational_exceptions_page(lu: LogicalUnit, changeable: bool) -> bytes:
    page = bytearray(12)
    page[0], page[1] = 0x1C, 0x0A
    return bytes(page)


MODE_PAGES = {0x08: _caching_page, 0x0A: _control_page, 0x1C: _informational_exceptions_page}


def _mode_pages(lu: LogicalUnit, cdb: bytes) -> bytes:
    page_control, page_code, subpage = cdb[2] >> 6, cdb[2] & 0x3F, cdb[3]
    if page_control == 3:
        raise s.CheckCondition(s.SAVING_PARAMETERS_NOT_SUPPORTED)
    changeable = page_control == 1
    if page_code == 0x3F and subpage in (0x00, 0xFF):
        return b"".join(build(lu, changeable) for _, build in sorted(MODE_PAGES.items()))
    if page_code in MODE_PAGES and subpage == 0:
        return MODE_PAGES[page_code](lu, changeable)
    raise invalid_field(2)


def _device_specific(lu: LogicalUnit) -> int:
    return (0x80 if lu.readonly else 0) | 0x10  # WP, DPOFUA


@command(MODE_SENSE_6, access=Access.READ, usage="oo08ffffff07")
def mode_sense_6(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 6)
    pages = _mode_pages(lu, cdb)
    descriptor = b""
    if not cdb[1] & 0x08:  # DBD clear: include a short block descriptor
        descriptor = struct.pack(">I", min(lu.block_count, 0xFFFFFFFF)) + struct.pack(">I", BLOCK_SIZE)
    header = bytes((3 + len(descriptor) + len(pages), 0, _device_specific(lu), len(descriptor)))
    return s.ScsiResult(data=truncate(header + descriptor + pages, cdb[4]))


@command(MODE_SENSE_10, access=Access.READ, usage="oo18ffff000000ffff07")
def mode_sense_10(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 10)
    pages = _mode_pages(lu, cdb)
    long_lba = bool(cdb[1] & 0x10)
    descriptor = b""
    if not cdb[1] & 0x08:
        if long_lba:
            descriptor = struct.pack(">QII", lu.block_count, 0, BLOCK_SIZE)
        else:
            descriptor = struct.pack(">II", min(lu.block_count, 0xFFFFFFFF), BLOCK_SIZE)
    header = struct.pack(">HBBBBH", 6 + len(descriptor) + len(pages), 0, _device_specific(lu),
                         1 if long_lba and descriptor else 0, 0, len(descriptor))
    return s.ScsiResult(data=truncate(header + descriptor + pages, be(cdb, 7, 2)))


# ---- MODE SELECT --------------------------------------------------------------

MODE_SELECT_6 = 0x15
MODE_SELECT_10 = 0x55


def _apply_mode_pages(lu: LogicalUnit, cmd: Command, pages: bytes) -> None:
    """Accept pages whose only changes are bits we report as changeable."""
    changed = False
    pos = 0
    while pos < len(pages):
        if len(pages) - pos < 2:
            raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
        code, subpage_format = pages[pos] & 0x3F, bool(pages[pos] & 0x40)
        length = 2 + (int.from_bytes(pages[pos + 2:pos + 4], "big") + 2 if subpage_format else pages[pos + 1])
        page = pages[pos:pos + length]
        build = MODE_PAGES.get(code)
        if build is None or subpage_format or len(page) != len(build(lu, False)):
            raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST, field_pointer=pos)
        current, mask = build(lu, False), build(lu, True)
        for i in range(2, len(page)):
            if (page[i] ^ current[i]) & ~mask[i] & 0xFF:
                raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
        if code == 0x08:
            wanted = bool(page[2] & 0x04)
            if wanted != lu.write_cache:
                if not wanted:
                    lu.store.flush()  # going write-through: nothing cached may stay behind
                lu.write_cache = wanted
                changed = True
        pos += length
    if changed:
        lu.add_unit_attention(MODE_PARAMETERS_CHANGED, exclude=cmd.nexus.key)


def _mode_select(lu: LogicalUnit, cmd: Command, header_len: int, descriptor_len: int, length: int) -> s.ScsiResult:
    cdb, data = cmd.cdb, bytes(cmd.data or b"")
    if cdb[1] & 0x01:  # SP: we save nothing
        raise s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=1)
    if not cdb[1] & 0x10 and length:  # PF=0: vendor-specific pages, which we have none of
        raise s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=1)
    if len(data) < length or (length and length < header_len):
        raise s.CheckCondition(s.PARAMETER_LIST_LENGTH_ERROR)
    if descriptor_len not in (0, 8, 16) or header_len + descriptor_len > length and length:
        raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
    _apply_mode_pages(lu, cmd, data[header_len + descriptor_len:length])
    return s.ScsiResult()


@command(MODE_SELECT_6, access=Access.WRITE, usage="oo110000ff07")
def mode_select_6(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    need(cmd.cdb, 6)
    data = bytes(cmd.data or b"")
    return _mode_select(lu, cmd, 4, data[3] if len(data) >= 4 else 0, cmd.cdb[4])


@command(MODE_SELECT_10, access=Access.WRITE, usage="oo1100000000ffff07")
def mode_select_10(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    need(cmd.cdb, 10)
    data = bytes(cmd.data or b"")
    descriptor_len = int.from_bytes(data[6:8], "big") if len(data) >= 8 else 0
    return _mode_select(lu, cmd, 8, descriptor_len, be(cmd.cdb, 7, 2))


# ---- PREVENT ALLOW MEDIUM REMOVAL ----------------------------------------------

@command(0x1E, access=Access.WRITE, usage="oo0000000307")
def prevent_allow(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    need(cmd.cdb, 6)
    if cmd.cdb[4] & 0x03:
        lu.prevent.add(cmd.nexus.key)
    else:
        lu.prevent.discard(cmd.nexus.key)
    return s.ScsiResult()


# ---- REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN, service action 0Ch) ------

MAINTENANCE_IN = 0xA3
REPORT_SUPPORTED_OPCODES = 0x0C
_TIMEOUTS = struct.pack(">HBBII", 0x0A, 0, 0, 0, 0)  # no nominal or recommended timeout


def _one_command(opcode: int, service_action: int | None, rctd: bool) -> bytes:
    entry = HANDLERS.get(opcode)
    supported = entry is not None and (not entry.service_actions or service_action in entry.service_actions)
    if not supported or entry is None:
        return bytes((0, 0x01, 0, 0))  # SUPPORT 001b: not supported
    usage = entry.cdb_usage or bytes((opcode,))
    if entry.service_actions and service_action is not None:
        usage = usage[:1] + bytes((usage[1] & 0xE0 | service_action,)) + usage[2:]
    header = bytes((0, (0x80 if rctd else 0) | 0x03)) + struct.pack(">H", len(usage))
    return header + usage + (_TIMEOUTS if rctd else b"")


def _all_commands(rctd: bool) -> bytes:
    body = b""
    for opcode in sorted(HANDLERS):
        entry = HANDLERS[opcode]
        length = len(entry.cdb_usage) or 6
        for action in entry.service_actions or (None,):
            flags = (0x02 if rctd else 0) | (0x01 if action is not None else 0)
            body += struct.pack(">BBHBBH", opcode, 0, action or 0, 0, flags, length)
            body += _TIMEOUTS if rctd else b""
    return struct.pack(">I", len(body)) + body


@command(MAINTENANCE_IN, access=Access.NONE, service_actions=(REPORT_SUPPORTED_OPCODES,),
         usage="oo1f87ffffffffffff0007")
def maintenance_in(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 12)
    if cdb[1] & 0x1F != REPORT_SUPPORTED_OPCODES:
        raise invalid_field(1)
    rctd, options, opcode, action = bool(cdb[2] & 0x80), cdb[2] & 0x07, cdb[3], be(cdb, 4, 2)
    allocation = be(cdb, 6, 4)
    entry = HANDLERS.get(opcode)
    if options == 0:
        payload = _all_commands(rctd)
    elif options == 1:
        if entry is not None and entry.service_actions:
            raise invalid_field(3)  # this opcode needs a service action: options 2 say which
        payload = _one_command(opcode, None, rctd)
    elif options == 2:
        if entry is not None and not entry.service_actions:
            raise invalid_field(3)
        payload = _one_command(opcode, action, rctd)
    elif options == 3:
        payload = _one_command(opcode, action if entry is not None and entry.service_actions else None, rctd)
    else:
        raise invalid_field(2)
    return s.ScsiResult(data=truncate(payload, allocation))
