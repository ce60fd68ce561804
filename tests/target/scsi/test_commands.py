"""SPC/SBC handlers over a real raw image file."""

import struct

import pytest

from target.scsi import sense as s
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.scsi.nexus import LOCAL
from target.stores.raw import RawStore

BLOCKS = 2048


@pytest.fixture
def device(tmp_path):
    store = RawStore.create(tmp_path / "d.img", BLOCKS * 512)
    ro_path = tmp_path / "ro.img"
    ro_path.write_bytes(b"\x5a" * 4096)
    ro = RawStore(ro_path, readonly=True)
    yield ScsiDevice([LogicalUnit("d", store, target_name="iqn.2026-11.x:t"), LogicalUnit("ro", ro)])
    store.close()
    ro.close()


def run(device, cdb, data=None, lun=0):
    return device.execute(lun, bytes(cdb), data, LOCAL)


def sense_of(result):
    return result.sense[2] & 0x0F, result.sense[12], result.sense[13]


@pytest.mark.parametrize("read_op,write_op,cdb_len", [(0x08, 0x0A, 6), (0x28, 0x2A, 10), (0xA8, 0xAA, 12),
                                                      (0x88, 0x8A, 16)])
def test_read_write_all_sizes(device, read_op, write_op, cdb_len):
    lba, blocks = 100, 3
    data = bytes(range(256)) * 6
    def cdb(op):
        c = bytearray(cdb_len)
        c[0] = op
        if cdb_len == 6:
            c[1:4] = lba.to_bytes(3, "big"); c[4] = blocks
        elif cdb_len == 10:
            struct.pack_into(">IxH", c, 2, lba, blocks)
        elif cdb_len == 12:
            struct.pack_into(">II", c, 2, lba, blocks)
        else:
            struct.pack_into(">QI", c, 2, lba, blocks)
        return c
    assert run(device, cdb(write_op), data).status == s.GOOD
    assert bytes(run(device, cdb(read_op)).data) == data


def test_out_of_range_and_unknown_opcode(device):
    result = run(device, struct.pack(">BBIBHB", 0x28, 0, BLOCKS - 1, 0, 2, 0))
    assert sense_of(result) == s.LBA_OUT_OF_RANGE
    assert sense_of(run(device, bytes([0xC7] + [0] * 9))) == s.INVALID_COMMAND_OPERATION_CODE
    assert sense_of(run(device, bytes([0x28, 0]))) == s.INVALID_FIELD_IN_CDB  # truncated CDB


def test_readonly_lun_refuses_writes_but_reads(device):
    result = run(device, struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 1, 0), bytes(512), lun=1)
    assert result.status == s.CHECK_CONDITION and sense_of(result) == s.WRITE_PROTECTED
    assert bytes(run(device, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0), lun=1).data) == b"\x5a" * 512
    mode = run(device, bytes([0x1A, 0x08, 0x3F, 0, 255, 0]), lun=1)
    assert mode.data[2] & 0x80  # WP bit in the mode parameter header


def test_capacity_and_report_luns(device):
    assert run(device, bytes([0x25] + [0] * 9)).data == struct.pack(">II", BLOCKS - 1, 512)
    rc16 = run(device, bytes([0x9E, 0x10] + [0] * 8 + [0, 0, 0, 32, 0, 0]))
    assert struct.unpack_from(">QI", rc16.data) == (BLOCKS - 1, 512)
    luns = run(device, bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), lun=7)
    assert luns.data == struct.pack(">I", 16) + bytes(4) + bytes(8) + bytes([0, 1]) + bytes(6)


def test_inquiry_pages_and_missing_lun(device):
    std = run(device, bytes([0x12, 0, 0, 0, 96, 0]))
    assert std.data[0] == 0 and std.data[8:15] == b"BOOTSRV"
    pages = run(device, bytes([0x12, 1, 0, 0, 255, 0]))
    assert list(pages.data[4:]) == [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]
    assert sense_of(run(device, bytes([0x12, 1, 0x99, 0, 255, 0]))) == s.INVALID_FIELD_IN_CDB
    missing = run(device, bytes([0x12, 0, 0, 0, 96, 0]), lun=9)
    assert missing.data[0] == 0x7F
    assert sense_of(run(device, bytes(6), lun=9)) == s.LOGICAL_UNIT_NOT_SUPPORTED
    ident = run(device, bytes([0x12, 1, 0x83, 0, 255, 0])).data
    assert ident[4:8] == bytes([0x01, 0x03, 0x00, 0x08]) and ident[8] >> 4 == 3  # NAA 3, 8 bytes


def test_mode_sense_pages(device):
    caching = run(device, bytes([0x5A, 0x08, 0x08, 0, 0, 0, 0, 0, 255, 0])).data
    assert caching[8] == 0x08 and caching[10] & 0x04  # WCE
    saved = run(device, bytes([0x1A, 0, 0xC8, 0, 255, 0]))
    assert sense_of(saved) == s.SAVING_PARAMETERS_NOT_SUPPORTED
    long_desc = run(device, bytes([0x5A, 0x10, 0x3F, 0, 0, 0, 0, 0, 255, 0])).data
    assert long_desc[4] & 1 and struct.unpack_from(">H", long_desc, 6)[0] == 16


def test_synchronize_cache_and_fua(device):
    assert run(device, bytes([0x35] + [0] * 9)).status == s.GOOD
    assert device.may_block(0, bytes([0x35] + [0] * 9))
    fua_write = struct.pack(">BBIBHB", 0x2A, 0x08, 0, 0, 1, 0)
    assert device.may_block(0, fua_write) and not device.may_block(0, bytes([0x2A] + [0] * 9))
    assert run(device, fua_write, b"\x01" * 512).status == s.GOOD


def test_a_store_format_error_during_io_is_a_medium_error_not_a_bad_cdb(tmp_path):
    # A parked differencing disk opens again at its next READ; its parent is gone by then.
    from target.stores.gate import GatedStore
    from target.stores.vhd import open_vhd
    from target.stores.vhd.create import create_differencing, create_dynamic

    create_dynamic(tmp_path / "base.vhd", BLOCKS * 512)
    create_differencing(tmp_path / "child.vhd", tmp_path / "base.vhd")
    gate = GatedStore(open_vhd(tmp_path / "child.vhd"))
    gate.park(lambda: open_vhd(tmp_path / "child.vhd"))
    (tmp_path / "base.vhd").unlink()
    device = ScsiDevice([LogicalUnit("d", gate)])
    result = run(device, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0))
    assert result.status == s.CHECK_CONDITION
    assert sense_of(result) == s.UNRECOVERED_READ_ERROR
    result = run(device, struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 1, 0), bytes(512))
    assert sense_of(result) == s.WRITE_ERROR
