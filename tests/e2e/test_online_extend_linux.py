"""Online extend while the Linux kernel initiator has the disk mounted: a rescan shows the
new size, resize2fs grows the file system online, fsck is clean, and qemu-img and libvhdi
agree on the new size.

A real Linux (the golden image's Debian kernel and initramfs, booted directly by QEMU on the
lab's tap0) logs in with the kernel initiator to a served [[disk]], a dynamic VHD holding a
whole-disk ext4, mounts it and writes; `bootsrv disk extend -c` grows the disk under it; the
machine rescans until it sees the new size, runs resize2fs on the mounted file system, writes
more than the old file system could hold, unmounts, runs e2fsck -fn and powers off."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli
from tests.support.linux_boot import Console, wait_powered_off
from tests.support.linux_image import EXTEND_FILE_MIB
from tests.support.netboot import wait_for
from tests.support.online_extend import (INITIATOR_IQN, TARGET_IQN, WAITING, MiB, ext4_on_host, ext4_vhd,
                                         power_on_extend_client, serve, stop)
from tests.support.tools import require_tool, run

pytestmark = pytest.mark.e2e
OLD, NEW = 32 * MiB, 96 * MiB


@pytest.mark.timeout(1800)
def test_linux_grows_its_mounted_ext4_online_after_the_disk_is_extended(lab_netns, tmp_path):
    disk = ext4_vhd(tmp_path, OLD)
    server, server_log, config = serve(lab_netns, tmp_path, disk)
    machine, serial = power_on_extend_client(lab_netns, tmp_path)
    wait_for(lambda: WAITING in Console.read(serial).said() or Console.read(serial).failures(),
             "the machine to mount the disk", 900, machine)
    console = Console.read(serial)
    assert console.failures() == [], console.text[-6000:]
    assert console.value("disk sectors") == str(OLD // 512), console.text[-6000:]

    grown = run_cli("disk", "extend", disk, "--size", "96MiB", "-c", config, cwd=tmp_path, check=True)
    assert "sessions told" in grown.stdout, grown.stdout  # the running server grew it, online

    wait_powered_off({"the extend client": machine}, timeout=900)
    console = Console.read(serial)
    report = f"console:\n{console.text[-8000:]}\nserver log:\n{server_log()[-3000:]}"
    assert console.failures() == [], report
    assert "extend done" in console.said(), report
    assert console.kernel_errors() == [], report
    # The kernel saw the new size on a rescan, with the disk mounted ...
    assert console.value("rescan") == f"{NEW // 512} sectors", report
    assert "sd 0:0:0:0: Capacity data has changed" in console.text, report  # the 2Ah/09h unit attention
    assert f"[sda] {NEW // 512} 512-byte logical blocks" in console.text, report
    # ... resize2fs grew the mounted file system (online) ...
    assert console.value("resize2fs exit") == "0", report
    assert any("on-line resizing required" in line for line in console.said()), report
    assert console.value("still mounted") == "yes", report
    grew_to = f"resize2fs said: The filesystem on /dev/sda is now {NEW // 1024} (1k) blocks long."
    assert grew_to in console.said(), report  # the whole new disk
    before, after = int(console.value("fs KiB before")), int(console.value("fs KiB after"))
    # df grew by the added space, less the new groups' inode tables and bitmaps (under a tenth).
    assert after - before > (NEW - OLD) // 1024 * 9 // 10, report
    # ... and held a file bigger than the old disk, read back after the caches were dropped.
    assert console.value("wrote after-extend") == f"{EXTEND_FILE_MIB} MiB", report
    assert EXTEND_FILE_MIB * MiB > OLD
    assert console.value("e2fsck exit") == "0", report

    log = server_log()
    assert f"{INITIATOR_IQN} logged in to {TARGET_IQN}" in log, log
    assert "disk data extended online" in log, log
    assert stop(server) == 0, log
    assert "Traceback" not in server_log(), server_log()

    # The file: qemu-img and libvhdi agree on the new size, its structure checks, and the
    # host's e2fsck finds the grown file system clean, with the machine's files in it.
    info = run(["qemu-img", "info", "-f", "vpc", str(disk)]).stdout
    assert f"virtual size: 96 MiB ({NEW} bytes)" in info, info
    vhdi = run([require_tool("vhdiinfo"), str(disk)]).stdout
    assert f"{NEW} bytes" in vhdi, vhdi
    assert run_cli("disk", "check", disk, check=True).stdout.strip().endswith("ok")
    fsck, listing = ext4_on_host(disk, tmp_path)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "made-on-the-host" in listing and "before-extend" in listing, listing
    assert str(EXTEND_FILE_MIB * MiB) in listing.split("after-extend")[0].splitlines()[-1], listing
