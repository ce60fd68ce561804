"""A full file system under a disk: the write fails with SPACE ALLOCATION FAILED
WRITE PROTECT, and nothing acknowledged before is damaged. A small tmpfs makes
the file system full for real (root only)."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.scsi.nexus import LOCAL
from target.stores.raw import RawStore
from target.stores.vhd import open_vhd
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_dynamic

MiB = 1 << 20
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


@pytest.fixture
def small_fs(tmp_path):
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def write10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def read10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def fill_until_full(store) -> tuple[ScsiDevice, list[int], bytes]:
    """1 MiB writes until one fails; returns the device, the MiB acknowledged, the failure's sense."""
    device = ScsiDevice([LogicalUnit("disk", store, target_name="iqn.2026-11.test:full")])
    acknowledged = []
    for mib in range(32):
        result = device.execute(0, write10(mib * 2048, 2048), bytes([mib + 1]) * MiB, LOCAL)
        if result.status:
            return device, acknowledged, result.sense
        acknowledged.append(mib)
    raise AssertionError("the file system never filled up")


def assert_space_allocation_failed(sense: bytes) -> None:
    assert (sense[2] & 0x0F, sense[12], sense[13]) == (0x7, 0x27, 0x07)


def test_raw_disk_on_a_full_file_system(small_fs):
    store = RawStore.create(small_fs / "disk.img", 32 * MiB)  # sparse: more disk than file system
    device, acknowledged, sense = fill_until_full(store)
    assert_space_allocation_failed(sense)
    assert 2 <= len(acknowledged) <= 6  # a 6 MiB file system
    for mib in acknowledged:
        assert device.execute(0, read10(mib * 2048, 2048), None, LOCAL).data == bytes([mib + 1]) * MiB
    store.close()


def test_dynamic_vhd_on_a_full_file_system_stays_a_valid_disk(small_fs):
    path = small_fs / "disk.vhd"
    create_dynamic(path, 32 * MiB, block_size=MiB)
    store = open_vhd(path)
    device, acknowledged, sense = fill_until_full(store)
    assert_space_allocation_failed(sense)
    store.close()
    assert check_vhd(path).ok, check_vhd(path).findings
    reopened = open_vhd(path)
    try:
        for mib in acknowledged:
            assert reopened.read(mib * MiB, MiB) == bytes([mib + 1]) * MiB
    finally:
        reopened.close()
