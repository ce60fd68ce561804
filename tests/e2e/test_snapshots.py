"""Issue 6 acceptance 1-4: snapshots of live disks, their exports, mounts and
rollback, checked with real peers (a raw-wire initiator writing while snapshots
are taken, qemu-img, pyvhdi, the kernel's loop driver and ext4)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.initiator import RAW_INITIATOR, RawInitiator
from tests.support.scratch import SCRATCH_IQN
from tests.support.snapshots import (
    CLIENT, CLIENT_INITIATOR, CLIENT_IQN, MiB, SequenceWriter, bootsrv_cli, check_cut, client_config, held_ms,
    make_golden, mount_url, pyvhdi_read, read_through_mount, rollback_over_a_client, snapshot, snapshot_ids,
    snapshots_while_writing, standalone_config, write_image, write_sectors)
from tests.support.tools import run

pytestmark = pytest.mark.e2e


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("kind", ["standalone", "client"])
def test_snapshots_under_continuous_writes_are_clean_cuts(run_server, tmp_path, kind):
    if kind == "client":
        make_golden(tmp_path, "256MiB")
        server = run_server(client_config())
        disk, target, initiator = CLIENT, CLIENT_IQN, CLIENT_INITIATOR
        golden_before = sha((tmp_path / "golden.vhd").read_bytes())
    else:
        server = run_server(standalone_config("256MiB"))
        disk, target, initiator = "scratch", SCRATCH_IQN, RAW_INITIATOR
    writer = SequenceWriter(server.port, target, initiator, slots=256 * MiB // SequenceWriter.SLOT)
    writer.start()
    assert writer.ready.wait(30)
    cuts = snapshots_while_writing(server, disk, writer, 5, 0.2)
    assert not writer.errors, writer.errors
    assert len(writer.writes) > 200, "the writer hardly wrote: no load to cut through"
    for cut in cuts:
        check_cut(read_through_mount(server, disk, cut[0], tmp_path / "snap.raw"), writer.writes, cut)
    pauses = held_ms(server)
    print(f"{kind}: {len(writer.writes)} writes, writes held per snapshot (ms): {pauses}")
    if kind == "client":
        assert sha((tmp_path / "golden.vhd").read_bytes()) == golden_before, "the golden image changed"
    for vhd in [tmp_path / "state" / "clients" / f"{CLIENT}.vhd"] if kind == "client" else [tmp_path / "disks" / "scratch.vhd"]:
        for path in [vhd, *sorted((vhd.parent / f"{vhd.stem}.snapshots").glob("*.vhd"))]:
            bootsrv_cli(tmp_path, "disk", "check", str(path))


def test_full_and_incremental_exports_match_the_snapshot(run_server, tmp_path):
    server = run_server(standalone_config())
    url = server.url(SCRATCH_IQN)
    first = os.urandom(24 * MiB)
    write_image(server, url, first, tmp_path / "a.bin")
    snapshot(server, "create", "scratch", "--label", "monday")
    second = os.urandom(3 * MiB)
    write_image(server, url, second, tmp_path / "b.bin")  # overwrites the start
    snapshot(server, "create", "scratch", "--label", "tuesday")
    one, two = snapshot_ids(server)
    dest = tmp_path / "backup"
    full_one = Path(snapshot(server, "export", str(one), str(dest)).stdout.split()[0])
    incr_two = Path(snapshot(server, "export", str(two), str(dest), "--incremental-from", str(one)).stdout.split()[0])
    full_two = Path(snapshot(server, "export", str(two), str(dest)).stdout.split()[0])
    raw_two = Path(snapshot(server, "export", str(two), str(dest), "--format", "raw").stdout.split()[0])
    # qemu-img: the full export equals the snapshot read through its read-only iSCSI mount.
    snapshot(server, "mount", str(one), "--iscsi")
    run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", str(full_one), mount_url(server, "scratch", one)])
    snapshot(server, "unmount", str(one))
    run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", str(full_two), str(raw_two)])
    # libvhdi follows the incremental chain to the same bytes as the full export.
    size = 64 * MiB
    expected_two = second + first[len(second):] + bytes(size - len(first))
    assert pyvhdi_read([incr_two, full_one], size) == expected_two
    assert pyvhdi_read([full_two], size) == expected_two
    assert incr_two.stat().st_size < 8 * MiB, "the incremental export holds more than the change"
    # Manifests: verify passes, sha256sum agrees, and a damaged base is found.
    for export in (full_one, incr_two, full_two, raw_two):
        assert "ok" in bootsrv_cli(tmp_path, "snapshot", "verify", str(export)).stdout
        check = subprocess.run(["sha256sum", "-c", export.name + ".sha256"], cwd=dest, capture_output=True)
        assert check.returncode == 0, check.stdout
    with open(full_one, "r+b") as handle:
        handle.seek(4 * MiB)
        byte = handle.read(1)
        handle.seek(4 * MiB)
        handle.write(bytes([byte[0] ^ 0xFF]))
    damaged = bootsrv_cli(tmp_path, "snapshot", "verify", str(incr_two), check=False)
    assert damaged.returncode == 1 and "sha256" in damaged.stdout, damaged.stdout


def test_iscsi_mount_is_read_only(run_server, tmp_path):
    server = run_server(standalone_config())
    write_image(server, server.url(SCRATCH_IQN), os.urandom(MiB), tmp_path / "a.bin")
    snapshot(server, "create", "scratch")
    (snap_id,) = snapshot_ids(server)
    target = snapshot(server, "mount", str(snap_id), "--iscsi").stdout.strip()
    client = RawInitiator(server.port)
    try:
        client.login(digests=False, target=target)
        client.write10(0x10, 0, os.urandom(4096))
        response = client.recv()
        assert response.status == 0x02 and response.data[2 + 2] & 0x0F == 0x07, response.bhs.hex()  # DATA PROTECT
    finally:
        client.close()
    listing = run(["iscsi-ls", "-s", f"iscsi://127.0.0.1:{server.port}"]).stdout
    assert target in listing
    snapshot(server, "unmount", str(snap_id))
    assert target not in run(["iscsi-ls", f"iscsi://127.0.0.1:{server.port}"]).stdout


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "local mounts need root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not shutil.which("mkfs.ext4"):
        return "no mkfs.ext4"
    return None


@pytest.mark.skipif(_can_mount() is not None, reason=_can_mount() or "")
def test_local_mount_of_an_ext4_snapshot_loop_mounts(run_server, tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    (content / "hello.txt").write_text("snapshot says hello\n")
    fs = tmp_path / "fs.img"
    subprocess.run(["truncate", "-s", "32M", str(fs)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(fs)], check=True)
    server = run_server(standalone_config())
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(fs), server.url(SCRATCH_IQN)])
    snapshot(server, "create", "scratch")
    write_image(server, server.url(SCRATCH_IQN), bytes(2 * MiB), tmp_path / "zero.bin")  # the live disk moves on
    (snap_id,) = snapshot_ids(server)
    where, loop_mnt = tmp_path / "snap", tmp_path / "mnt"
    where.mkdir()
    loop_mnt.mkdir()
    image = snapshot(server, "mount", str(snap_id), "--local", str(where)).stdout.strip()
    assert image == str(where / "disk.img") and os.path.getsize(image) == 64 * MiB
    subprocess.run(["mount", "-o", "ro,loop", image, str(loop_mnt)], check=True, timeout=60)
    try:
        assert (loop_mnt / "hello.txt").read_text() == "snapshot says hello\n"
        busy = snapshot(server, "unmount", str(snap_id), check=False)
        assert busy.returncode == 1 and "busy" in busy.stderr
    finally:
        subprocess.run(["umount", str(loop_mnt)], check=True, timeout=60)
    snapshot(server, "unmount", str(snap_id))
    assert not os.path.exists(image)


def test_rollback_restores_the_snapshot_and_keeps_later_ones(run_server, tmp_path):
    server = run_server(standalone_config())
    url = server.url(SCRATCH_IQN)
    states = [os.urandom(8 * MiB) for _ in range(3)]
    write_image(server, url, states[0], tmp_path / "0.bin")
    snapshot(server, "create", "scratch")
    write_image(server, url, states[1], tmp_path / "1.bin")
    snapshot(server, "create", "scratch")
    write_image(server, url, states[2], tmp_path / "2.bin")
    one, two = snapshot_ids(server)
    rollback_over_a_client(server, one, SCRATCH_IQN)
    after = tmp_path / "after.raw"
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", url, str(after)])
    assert sha(after.read_bytes()[:8 * MiB]) == sha(states[0])
    # The newer snapshot is kept and still exports its own content.
    dest = tmp_path / "backup"
    full_two = Path(snapshot(server, "export", str(two), str(dest), "--format", "raw").stdout.split()[0])
    assert sha(full_two.read_bytes()[:8 * MiB]) == sha(states[1])
    # Deleting the snapshot both branches grew from merges it into both.
    snapshot(server, "delete", str(one))
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", url, str(after)])
    assert sha(after.read_bytes()[:8 * MiB]) == sha(states[0])
    assert read_through_mount(server, "scratch", two, tmp_path / "two.raw")[:8 * MiB] == states[1]
    for path in [tmp_path / "disks" / "scratch.vhd", *(tmp_path / "disks" / "scratch.snapshots").glob("*.vhd")]:
        bootsrv_cli(tmp_path, "disk", "check", str(path))


def test_incremental_export_of_sector_writes_reads_the_same_in_libvhdi(run_server, tmp_path):
    """Writes of single sectors, not aligned to 4 KiB: libvhdi takes every sector after a
    set bit in a bitmap byte as present, so an incremental export must hold whole bitmap
    bytes (8 sectors), the unchanged ones copied from the snapshot, to read the same."""
    server = run_server(standalone_config())
    url = server.url(SCRATCH_IQN)
    first = os.urandom(4 * MiB)
    write_image(server, url, first, tmp_path / "a.bin")
    snapshot(server, "create", "scratch")
    sector_writes = [(3 * 512, os.urandom(512)), (17 * 512, os.urandom(1536)), (4093 * 512, os.urandom(1024)),
                     (2 * MiB - 512, os.urandom(1024)), (5 * MiB + 7 * 512, os.urandom(512))]
    write_sectors(url, sector_writes)
    snapshot(server, "create", "scratch")
    one, two = snapshot_ids(server)
    dest = tmp_path / "backup"
    full_one = Path(snapshot(server, "export", str(one), str(dest)).stdout.split()[0])
    incr_two = Path(snapshot(server, "export", str(two), str(dest), "--incremental-from", str(one)).stdout.split()[0])
    full_two = Path(snapshot(server, "export", str(two), str(dest)).stdout.split()[0])
    size = 64 * MiB
    expected = bytearray(first + bytes(size - len(first)))
    for offset, data in sector_writes:
        expected[offset:offset + len(data)] = data
    assert pyvhdi_read([full_two], size) == expected
    chained = pyvhdi_read([incr_two, full_one], size)
    differing = [offset for offset in range(0, size, 4096) if chained[offset:offset + 4096] != expected[offset:offset + 4096]]
    assert not differing, f"libvhdi reads the incremental chain differently at {differing[:8]}"
