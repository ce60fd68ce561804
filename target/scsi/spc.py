"""SPC-4 primary commands for a direct-access disk: INQUIRY and its VPD pages,
MODE SENSE, REQUEST SENSE, TEST UNIT READY."""

from __future__ import annotations

import struct

from target.scsi import sense as s
from target.scsi.cdb import be, invalid_field, need, truncate
from target.scsi.lu import BLOCK_SIZE, LogicalUnit, command
from target.scsi.sbc import MAX_TRANSFER_BLOCKS, OPTIMAL_TRANSFER_BLOCKS

TEST_UNIT_READY = 0x00
REQUEST_SENSE = 0x03
INQUIRY = 0x12
MODE_SENSE_6 = 0x1A
MODE_SENSE_10 = 0x5A

# Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3
_VERSION_DESCRIPTORS = (0x00A0, 0x0960, 0x0460, 0x04C0)
ISCSI_PROTOCOL_ID = 0x5


@command(TEST_UNIT_READY)
def test_unit_ready(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    return s.ScsiResult()


@command(REQUEST_SENSE)
def request_sense(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    need(cdb, 6)
    if cdb[1] & 0x01:  # DESC: descriptor format, NO SENSE, no descriptors
        payload = bytes((0x72, s.NO_SENSE, 0, 0, 0, 0, 0, 0))
    else:
        payload = s.fixed_sense(s.NO_SENSE, 0, 0)
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


@command(INQUIRY)
def inquiry(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
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
    struct.pack_into(">H", body, 2, 1)  # optimal transfer length granularity (blocks)
    struct.pack_into(">I", body, 4, MAX_TRANSFER_BLOCKS)
    struct.pack_into(">I", body, 8, OPTIMAL_TRANSFER_BLOCKS)
    return bytes(body)


def _block_device_characteristics(lu: LogicalUnit) -> bytes:
    body = bytearray(0x3C)
    struct.pack_into(">H", body, 0, 1)  # medium rotation rate 1: non-rotating
    return bytes(body)


def _logical_block_provisioning(lu: LogicalUnit) -> bytes:
    # Fully provisioned, no UNMAP or WRITE SAME unmapping yet: every bit zero says so.
    return bytes(4)


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
    if not changeable:
        page[2] = 0x04  # WCE: writes are cached until SYNCHRONIZE CACHE or FUA
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


@command(MODE_SENSE_6)
def mode_sense_6(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
    need(cdb, 6)
    pages = _mode_pages(lu, cdb)
    descriptor = b""
    if not cdb[1] & 0x08:  # DBD clear: include a short block descriptor
        descriptor = struct.pack(">I", min(lu.block_count, 0xFFFFFFFF)) + struct.pack(">I", BLOCK_SIZE)
    header = bytes((3 + len(descriptor) + len(pages), 0, _device_specific(lu), len(descriptor)))
    return s.ScsiResult(data=truncate(header + descriptor + pages, cdb[4]))


@command(MODE_SENSE_10)
def mode_sense_10(lu: LogicalUnit, cdb: bytes, data: bytes | None) -> s.ScsiResult:
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
