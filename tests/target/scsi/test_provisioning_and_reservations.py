"""UNMAP / WRITE SAME / GET LBA STATUS on a real sparse file, COMPARE AND WRITE,
unit attentions, MODE SELECT, and persistent reservations incl. APTPL."""

import os
import struct

import pytest

from target.scsi import sense as s
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.scsi.nexus import Nexus
from target.scsi.reservations import Reservations
from target.stores.raw import RawStore

A, B = Nexus("iqn.2026-11.test:a", b"\x40\0\0\0\0\x01"), Nexus("iqn.2026-11.test:b", b"\x40\0\0\0\0\x02")
MiB = 1 << 20


@pytest.fixture
def disk(tmp_path):
    store = RawStore.create(tmp_path / "d.img", 16 * MiB)
    yield tmp_path, store
    store.close()


def device_for(tmp_path, store, path_name="pr.json"):
    reservations = Reservations(path=tmp_path / path_name)
    reservations.load()
    return ScsiDevice([LogicalUnit("d", store, reservations=reservations)])


def run(device, cdb, data=None, nexus=A):
    return device.execute(0, bytes(cdb), data, nexus)


def sense_of(result):
    return result.sense[2] & 0x0F, result.sense[12], result.sense[13]


def lba_status(device, lba):
    result = run(device, struct.pack(">BBQIBB", 0x9E, 0x12, lba, 64, 0, 0))
    return struct.unpack_from(">QIB", result.data, 8)


def test_write_same_unmap_punches_holes_that_read_zero(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    run(device, struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 2048, 0), b"\xff" * MiB)
    os.fsync(os.open(store.path, os.O_RDONLY))
    assert lba_status(device, 0)[2] == 0  # mapped
    unmap16 = struct.pack(">BBQIBB", 0x93, 0x08, 0, 2048, 0, 0)
    assert run(device, unmap16, bytes(512)).status == s.GOOD
    assert bytes(run(device, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 2048, 0)).data) == bytes(MiB)
    lba, blocks, status = lba_status(device, 0)
    assert (lba, status) == (0, 1) and blocks >= 2048  # deallocated, as the file system says
    assert os.stat(store.path).st_blocks < 2048  # the space really went back


def test_unmap_command_and_its_limits(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    run(device, struct.pack(">BBIBHB", 0x2A, 0, 8, 0, 8, 0), b"\x01" * 4096)
    params = struct.pack(">HH4x", 6 + 16, 16) + struct.pack(">QI4x", 8, 8)
    assert run(device, struct.pack(">BBIBHB", 0x42, 0, 0, 0, len(params), 0), params).status == s.GOOD
    assert bytes(run(device, struct.pack(">BBIBHB", 0x28, 0, 8, 0, 8, 0)).data) == bytes(4096)
    beyond = struct.pack(">HH4x", 22, 16) + struct.pack(">QI4x", 32760, 16)
    assert sense_of(run(device, struct.pack(">BBIBHB", 0x42, 0, 0, 0, len(beyond), 0), beyond)) == s.LBA_OUT_OF_RANGE


def test_compare_and_write_reports_the_first_mismatching_byte(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    run(device, struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 2, 0), b"A" * 1024)
    caw = struct.pack(">BBQ3xBBB", 0x89, 0, 0, 2, 0, 0)
    assert run(device, caw, b"A" * 1024 + b"B" * 1024).status == s.GOOD
    assert bytes(store.read(0, 1024)) == b"B" * 1024
    wrong = bytearray(b"B" * 1024)
    wrong[700] = ord("X")
    result = run(device, caw, bytes(wrong) + b"C" * 1024)
    assert sense_of(result) == (s.MISCOMPARE, 0x1D, 0x00)
    assert struct.unpack_from(">I", result.sense, 3)[0] == 700
    assert bytes(store.read(0, 1024)) == b"B" * 1024  # nothing written on a miscompare


def test_unit_attentions_power_on_then_mode_parameters_changed(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    device.nexus_added(A)
    device.nexus_added(B)
    tur = bytes(6)
    assert sense_of(run(device, tur, nexus=A)) == (s.UNIT_ATTENTION, 0x29, 0x00)
    assert run(device, tur, nexus=A).status == s.GOOD  # reported once
    assert run(device, bytes([0x12, 0, 0, 0, 36, 0]), nexus=B).status == s.GOOD  # INQUIRY never reports it
    sense = run(device, bytes([0x03, 0, 0, 0, 18, 0]), nexus=B)  # REQUEST SENSE returns and clears it
    assert sense.data[2] == s.UNIT_ATTENTION and sense.data[12] == 0x29
    caching = bytes(run(device, bytes([0x1A, 0x08, 0x08, 0, 255, 0]), nexus=A).data)
    page = bytearray(caching[4:])
    page[2] &= ~0x04  # WCE off: write-through
    select = bytes([0x15, 0x10, 0, 0, 4 + len(page), 0])
    assert run(device, select, bytes(4) + bytes(page), nexus=A).status == s.GOOD
    assert not device.units[0].write_cache
    assert sense_of(run(device, tur, nexus=B)) == (s.UNIT_ATTENTION, 0x2A, 0x01)
    page[3] ^= 0x01  # a bit we do not report as changeable
    assert sense_of(run(device, select, bytes(4) + bytes(page), nexus=A)) == s.INVALID_FIELD_IN_PARAMETER_LIST


def prout(action, key, sa_key, kind=0, aptpl=False):
    cdb = struct.pack(">BBBxxIB", 0x5F, action, kind, 24, 0)
    return cdb, struct.pack(">QQ4xBxH", key, sa_key, 0x01 if aptpl else 0, 0)


def test_persistent_reservation_write_exclusive_and_aptpl_survives_restart(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    for nexus, key in ((A, 0xA), (B, 0xB)):
        cdb, data = prout(0, 0, key, aptpl=True)
        assert run(device, cdb, data, nexus).status == s.GOOD
    cdb, data = prout(1, 0xA, 0, kind=1)  # RESERVE, write exclusive
    assert run(device, cdb, data, A).status == s.GOOD
    write = struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 1, 0)
    assert run(device, write, bytes(512), B).status == s.RESERVATION_CONFLICT
    assert run(device, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0), nexus=B).status == s.GOOD
    assert run(device, write, bytes(512), A).status == s.GOOD
    # A server restart: the APTPL state is read back from state_dir.
    again = device_for(tmp_path, store)
    keys = run(again, bytes([0x5E, 0, 0, 0, 0, 0, 0, 0, 255, 0]), nexus=B).data
    assert struct.unpack_from(">I", keys, 4)[0] == 16
    reservation = run(again, bytes([0x5E, 1, 0, 0, 0, 0, 0, 0, 255, 0]), nexus=B).data
    assert struct.unpack_from(">Q", reservation, 8)[0] == 0xA and reservation[21] == 1
    assert run(again, write, bytes(512), B).status == s.RESERVATION_CONFLICT
    # PREEMPT by B takes the reservation and tells A its registration is gone.
    again.nexus_added(A)
    run(again, bytes(6), nexus=A)  # consume power-on
    cdb, data = prout(4, 0xB, 0xA, kind=3)
    assert run(again, cdb, data, B).status == s.GOOD
    assert sense_of(run(again, bytes(6), nexus=A)) == (s.UNIT_ATTENTION, 0x2A, 0x05)
    assert run(again, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0), nexus=A).status == s.RESERVATION_CONFLICT


def test_legacy_reserve_conflicts_and_is_released_on_nexus_loss(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    assert run(device, bytes([0x16, 0, 0, 0, 0, 0]), nexus=A).status == s.GOOD
    assert run(device, bytes(6), nexus=B).status == s.RESERVATION_CONFLICT  # even TEST UNIT READY
    assert run(device, bytes([0x12, 0, 0, 0, 36, 0]), nexus=B).status == s.GOOD
    device.nexus_removed(A)
    assert run(device, bytes(6), nexus=B).status == s.GOOD


def test_report_supported_operation_codes(disk):
    tmp_path, store = disk
    device = device_for(tmp_path, store)
    everything = run(device, struct.pack(">BBBBHIxB", 0xA3, 0x0C, 0, 0, 0, 8192, 0)).data
    opcodes = {everything[i] for i in range(4, len(everything), 8)}
    assert {0x00, 0x12, 0x28, 0x2A, 0x35, 0x5E, 0x5F, 0x89, 0x9E, 0xA0, 0xA3} <= opcodes
    one = run(device, struct.pack(">BBBBHIxB", 0xA3, 0x0C, 1, 0x28, 0, 512, 0)).data
    assert one[1] & 0x07 == 0x03 and struct.unpack_from(">H", one, 2)[0] == 10 and one[4] == 0x28
    absent = run(device, struct.pack(">BBBBHIxB", 0xA3, 0x0C, 1, 0xC7, 0, 512, 0)).data
    assert absent[1] & 0x07 == 0x01
    needs_sa = run(device, struct.pack(">BBBBHIxB", 0xA3, 0x0C, 1, 0x9E, 0, 512, 0))
    assert sense_of(needs_sa) == s.INVALID_FIELD_IN_CDB
