"""VHD stores against a bytearray model (hypothesis) and against qemu-img and libvhdi."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from target.stores.vhd import VhdFormatError, VhdStore, open_vhd, read_footer
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_differencing, create_dynamic, create_fixed, extend
from target.stores.vhd.format import FOOTER_SIZE, HEADER_SIZE, DynamicHeader
from tests.support.tools import libvhdi_read

MiB = 1 << 20


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (run the README's test command: make test)")
    return path


def sh(*cmd: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (cmd, result.stdout, result.stderr)
    return result.stdout


ops = st.lists(st.tuples(st.sampled_from(["write", "read", "unmap", "reopen"]),
                         st.integers(0, 255), st.integers(1, 40), st.integers(0, 255)), max_size=25)


def apply(ops_list, store_path, model: bytearray, size: int, *, can_unmap: bool) -> None:
    store = open_vhd(store_path)
    try:
        for op, sector, count, fill in ops_list:
            offset = sector * 512 % size
            length = min(count * 512, size - offset)
            if op == "write":
                data = bytes([fill]) * length
                store.write(offset, data, durable=fill % 7 == 0)
                model[offset:offset + length] = data
            elif op == "unmap" and can_unmap:
                store.unmap(offset, length)
                model[offset:offset + length] = bytes(length)
            elif op == "reopen":
                store.flush()
                store.close()
                store = open_vhd(store_path)
            expected = bytes(model[offset:offset + length])
            assert store.read(offset, length) == expected
            # What sendfile would send: file slices of this layer and its parent, zeros.
            assert store.read_pieces(offset, length).tobytes() == expected
        assert store.read(0, size) == bytes(model)
    finally:
        store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops_list=ops)
def test_dynamic_disk_equals_a_bytearray_model(tmp_path_factory, ops_list):
    path = tmp_path_factory.mktemp("dyn") / "d.vhd"
    size = 128 * 1024
    create_dynamic(path, size, block_size=16 * 1024)  # small blocks: many boundaries
    apply(ops_list, path, bytearray(size), size, can_unmap=True)
    assert check_vhd(path).ok, check_vhd(path).findings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops_list=ops, base_fill=st.binary(min_size=512, max_size=512))
def test_differencing_disk_equals_a_bytearray_model(tmp_path_factory, ops_list, base_fill):
    folder = tmp_path_factory.mktemp("diff")
    size = 128 * 1024
    create_dynamic(folder / "golden.vhd", size, block_size=16 * 1024)
    golden = open_vhd(folder / "golden.vhd")
    content = base_fill * (size // 512)
    golden.write(0, content[: size // 2])  # half allocated, half unallocated in the parent
    golden.flush()
    golden.close()
    before = hashlib.sha256((folder / "golden.vhd").read_bytes()).hexdigest()
    create_differencing(folder / "child.vhd", folder / "golden.vhd")
    model = bytearray(content[: size // 2] + bytes(size // 2))
    apply(ops_list, folder / "child.vhd", model, size, can_unmap=True)
    assert hashlib.sha256((folder / "golden.vhd").read_bytes()).hexdigest() == before
    assert check_vhd(folder / "child.vhd").ok


@pytest.mark.parametrize("size", [MiB, 100 * MiB, 3 * 1000 * 1000 * 512 // 512 * 512, (1 << 30) + 512])
@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
def test_qemu_reads_our_size(tmp_path, size, kind):
    path = tmp_path / "x.vhd"
    (create_fixed if kind == "fixed" else create_dynamic)(path, size)
    info = json.loads(sh(tool("qemu-img"), "info", "-f", "vpc", "--output=json", str(path)))
    assert info["virtual-size"] == size


@pytest.mark.parametrize("options", ["subformat=fixed", "subformat=fixed,force_size=on", "subformat=dynamic",
                                     "subformat=dynamic,force_size=on"])
def test_we_serve_qemu_made_images_byte_identically(tmp_path, options):
    path, raw = tmp_path / "q.vhd", tmp_path / "q.raw"
    sh(tool("qemu-img"), "create", "-f", "vpc", "-o", options, str(path), "50M")
    # Put data in with qemu-io (qemu's own writer), then compare with qemu-img convert's raw output.
    sh(tool("qemu-io"), "-f", "vpc", "-c", "write -P 0x5a 1M 3M", "-c", "write -P 0x11 40M 512", str(path))
    sh(tool("qemu-img"), "convert", "-f", "vpc", "-O", "raw", str(path), str(raw))
    store = open_vhd(path, readonly=True)
    try:
        expected = raw.read_bytes()
        assert store.size == len(expected)
        assert store.read(0, store.size) == expected
    finally:
        store.close()


def test_libvhdi_reads_our_chain_like_we_do(tmp_path):
    golden, child = tmp_path / "golden.vhd", tmp_path / "ws01.vhd"
    create_dynamic(golden, 8 * MiB)
    store = open_vhd(golden)
    store.write(0, os.urandom(4 * MiB))
    store.close()
    create_differencing(child, golden)
    store = open_vhd(child)
    # 4 KiB-aligned, as NTFS and ext4 write: libvhdi 20210425 mis-reads sectors that share a
    # bitmap byte with written ones but are not written themselves (it returns zeros, not the parent).
    store.write(MiB + 4096, os.urandom(12 * 1024))
    ours = store.read(0, store.size)
    store.close()
    fixed = tmp_path / "fixed.vhd"
    create_fixed(fixed, 2 * MiB)
    for path in (golden, child, fixed):
        out = sh(tool("vhdiinfo"), str(path))
        assert "Media size" in out, out
    assert "Parent filename\t\t: golden.vhd" in sh(tool("vhdiinfo"), str(child))
    theirs = libvhdi_read(child, golden)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours


def test_wrong_parent_uuid_and_vhdx_are_refused(tmp_path):
    golden, child = tmp_path / "golden.vhd", tmp_path / "child.vhd"
    create_dynamic(golden, MiB)
    create_differencing(child, golden)
    golden.unlink()
    create_dynamic(golden, MiB)  # same name, another disk
    with pytest.raises(VhdFormatError, match="UUID"):
        VhdStore(child)
    vhdx = tmp_path / "disk.vhdx"
    vhdx.write_bytes(b"vhdxfile" + bytes(4096))
    with pytest.raises(VhdFormatError, match="qemu-img convert"):
        read_footer(vhdx)


def test_check_finds_overlapping_blocks_and_bad_checksums(tmp_path):
    path = tmp_path / "d.vhd"
    create_dynamic(path, 8 * MiB)
    store = open_vhd(path)
    store.write(0, b"\x01" * 512)
    store.write(4 * MiB, b"\x02" * 512)
    store.close()
    assert check_vhd(path).ok
    with open(path, "r+b") as handle:
        header = DynamicHeader.unpack(os.pread(handle.fileno(), HEADER_SIZE, FOOTER_SIZE), "x")
        first = os.pread(handle.fileno(), 4, header.table_offset)
        os.pwrite(handle.fileno(), first, header.table_offset + 8)  # block 2 points at block 0's space
    report = check_vhd(path)
    assert not report.ok and any("overlap" in f for f in report.findings)
    with open(path, "r+b") as handle:
        handle.seek(FOOTER_SIZE + 100)
        handle.write(b"\xee")  # corrupt the dynamic header
    assert any("checksum" in f for f in check_vhd(path).findings)


def test_extend_fixed_and_dynamic(tmp_path):
    for kind, create in (("fixed", create_fixed), ("dynamic", create_dynamic)):
        path = tmp_path / f"{kind}.vhd"
        create(path, 4 * MiB)
        store = open_vhd(path)
        store.write(0, b"\x42" * 4096)
        store.close()
        extend(path, 40 * MiB)
        info = json.loads(sh(tool("qemu-img"), "info", "-f", "vpc", "--output=json", str(path)))
        assert info["virtual-size"] == 40 * MiB
        store = open_vhd(path)
        assert store.size == 40 * MiB and store.read(0, 4096) == b"\x42" * 4096
        assert store.read(4 * MiB - 512, 1024) == bytes(1024)  # the old footer became zeros
        store.write(39 * MiB, b"\x43" * 512)
        store.close()
        assert check_vhd(path).ok


def test_allocation_survives_losing_the_end_footer(tmp_path):
    """A crash between extending the file and writing the new footer: the copy at 0 serves."""
    path = tmp_path / "d.vhd"
    create_dynamic(path, 8 * MiB)
    store = open_vhd(path)
    store.write(0, b"\x07" * 512)
    store.flush()
    store.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.seek(size - FOOTER_SIZE)
        handle.write(bytes(FOOTER_SIZE))
    store = open_vhd(path)  # read-write: the footer goes back to the end, for readers that look only there
    assert store.read(0, 512) == b"\x07" * 512
    store.close()
    with open(path, "rb") as handle:
        handle.seek(-FOOTER_SIZE, os.SEEK_END)
        assert handle.read(8) == b"conectix"
    assert "Media size" in sh(tool("vhdiinfo"), str(path))


def test_sectors_are_claimed_only_by_the_flush_that_syncs_their_data(tmp_path):
    """A differencing disk's bitmap bits for sectors written for the first time reach
    the file after their data is synced (at the flush): until then the file, as a power
    cut would leave it, reads the parent there, never zeros."""
    golden, child = tmp_path / "golden.vhd", tmp_path / "child.vhd"
    create_dynamic(golden, 8 * MiB)
    store = open_vhd(golden)
    store.write(0, b"\x11" * 4 * MiB)
    store.close()
    create_differencing(child, golden)
    store = open_vhd(child)
    store.write(0, b"\x22" * 4096)  # allocates block 0
    store.flush()
    store.write(8192, b"\x33" * 4096)  # new sectors in an allocated block
    assert store.read(8192, 4096) == b"\x33" * 4096

    def on_file() -> bytes:
        reader = open_vhd(child, readonly=True)
        try:
            return reader.read(0, 16384)
        finally:
            reader.close()

    assert on_file() == b"\x22" * 4096 + b"\x11" * 12288
    store.flush()
    assert on_file() == b"\x22" * 4096 + b"\x11" * 4096 + b"\x33" * 4096 + b"\x11" * 4096
    store.write(12288, b"\x44" * 4096, durable=True)  # FUA saves them too
    assert on_file()[12288:] == b"\x44" * 4096
    store.write(4096, b"\x55" * 4096)
    store.close()  # and so does a clean stop
    assert on_file()[4096:8192] == b"\x55" * 4096


def test_unmap_frees_whole_blocks_and_lba_status_follows(tmp_path):
    from target.scsi.device import ScsiDevice
    from target.scsi.lu import LogicalUnit
    from target.scsi.nexus import LOCAL
    path = tmp_path / "d.vhd"
    create_dynamic(path, 16 * MiB)
    store = open_vhd(path)
    device = ScsiDevice([LogicalUnit("d", store)])
    write = struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 8192, 0)  # 4 MiB: blocks 0 and 1
    assert device.execute(0, write, b"\x33" * (4 * MiB), LOCAL).status == 0
    assert store.allocated_blocks() == 2
    status = device.execute(0, struct.pack(">BBQIBB", 0x9E, 0x12, 0, 64, 0, 0), None, LOCAL).data
    assert status[8 + 12] == 0  # LBA 0: mapped
    unmap = struct.pack(">BBQIBB", 0x93, 0x08, 0, 4096 + 8, 0, 0)  # block 0 whole, 8 sectors of block 1
    assert device.execute(0, unmap, bytes(512), LOCAL).status == 0
    assert store.allocated_blocks() == 1
    assert store.read(0, 2 * MiB + 4096) == bytes(2 * MiB + 4096)
    assert store.read(2 * MiB + 4096, 512) == b"\x33" * 512
    status = device.execute(0, struct.pack(">BBQIBB", 0x9E, 0x12, 0, 64, 0, 0), None, LOCAL).data
    assert status[8 + 12] == 1  # LBA 0: deallocated
    store.close()
    assert check_vhd(path).ok


def test_writes_that_allocate_are_flagged_for_a_worker_thread(tmp_path):
    from target.scsi.device import ScsiDevice
    from target.scsi.lu import LogicalUnit
    path = tmp_path / "d.vhd"
    create_dynamic(path, 8 * MiB)
    store = open_vhd(path)
    device = ScsiDevice([LogicalUnit("d", store)])
    write_8_sectors = struct.pack(">BBIBHB", 0x2A, 0, 16, 0, 8, 0)
    assert store.write_may_block(16 * 512, 4096) and device.may_block(0, write_8_sectors)  # allocates: fdatasync
    store.write(0, b"\x01" * 512)
    assert not store.write_may_block(16 * 512, 4096) and not device.may_block(0, write_8_sectors)
    store.close()


def test_extend_refuses_a_disk_that_is_open(tmp_path):
    path = tmp_path / "served.vhd"
    create_dynamic(path, MiB)
    store = open_vhd(path)
    with pytest.raises(VhdFormatError, match="in use"):
        extend(path, 2 * MiB)
    assert read_footer(path).virtual_size == MiB
    store.close()
    extend(path, 2 * MiB)
    assert read_footer(path).virtual_size == 2 * MiB


def test_a_differencing_disk_grows_past_its_parent_and_other_readers_agree(tmp_path):
    """A client disk (or a disk with snapshots under it) extended after it was made over a
    smaller parent: past the parent's end it reads zeros, writes land there, and libvhdi
    reads the chain as we do (qemu's vpc driver does not follow VHD parents at all)."""
    golden, child, made = tmp_path / "golden.vhd", tmp_path / "ws01.vhd", tmp_path / "made.vhd"
    create_dynamic(golden, 4 * MiB)
    store = open_vhd(golden)
    store.write(0, os.urandom(4 * MiB))
    store.close()
    create_differencing(child, golden)
    extend(child, 12 * MiB)
    create_differencing(made, golden, size=8 * MiB)  # made larger than its parent from the start
    for path, size in ((child, 12 * MiB), (made, 8 * MiB)):
        store = open_vhd(path)
        assert store.size == size and store.read(4 * MiB - 4096, 8192)[4096:] == bytes(4096)
        store.write(4 * MiB - 4096, b"\x61" * 8192)  # across the parent's end
        store.write(size - 4096, b"\x62" * 4096)
        ours = bytes(store.read(0, size))
        store.close()
        assert check_vhd(path).ok
        theirs = libvhdi_read(path, golden)
        assert theirs.returncode == 0, theirs.stderr
        assert theirs.stdout == ours, "libvhdi reads the grown chain differently"
    with pytest.raises(VhdFormatError, match="smaller than its parent"):
        create_differencing(tmp_path / "small.vhd", golden, size=2 * MiB)
