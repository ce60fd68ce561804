"""Power-on, not DHCP traffic, resets a disk (issue 16): an OS's own DHCP client
(no vendor class PXEClient) never resets a disk nor drops its session; a boot
ROM's DISCOVER does. A second namespace plays the client's NIC on the lab wire."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tests.e2e.netns import proxy_lab  # noqa: F401  (fixture)
from tests.e2e.test_netboot import LAB, golden_with_marker, read_at_1m, start_bootsrv, wait_for
from tests.support.dhcpclient import PXE_ROM_VENDOR, discover, send_broadcast

pytestmark = pytest.mark.e2e
WS02 = "52:54:00:12:34:57"
CONFIG = LAB.replace('interface = "tap0"', 'interface = "br0"') + """
[[client]]
name = "ws02"
mac = "52:54:00:12:34:57"
image = "golden"
ip = "10.77.0.102"
reset_on_boot = true
"""


def qemu_io(site, *commands: str) -> subprocess.Popen:
    """One iSCSI session to ws02's disk from the site namespace, running qemu-io commands in order."""
    opts = ("driver=iscsi,transport=tcp,portal=10.77.0.1:3260,target=iqn.2026-11.lan.bootsrv:ws02,lun=0,"
            "initiator-name=iqn.2026-11.lan.bootsrv:initiator.ws02")
    argv = ["qemu-io", "--image-opts", opts]
    for command in commands:
        argv += ["-c", command]
    return subprocess.Popen(site.cmd(*argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_os_dhcp_never_resets_a_disk_and_boot_firmware_does(proxy_lab, tmp_path):
    lab, site = proxy_lab
    golden_with_marker(tmp_path)
    server_log = start_bootsrv(lab, tmp_path, CONFIG)
    disk = tmp_path / "state" / "clients" / "ws02.vhd"
    # A live session writes, then waits while the OS's DHCP clients ask, then reads back.
    session = qemu_io(site, "write -P 0x62 1M 4k", "flush", "sleep 4000", "read -P 0x62 1M 4k")
    wait_for(lambda: "initiator.ws02 logged in" in server_log(), "the session", 60)
    time.sleep(1)  # let the write land before the OS's DHCP traffic
    for vendor in (b"", b"udhcp 1.35.0", b"Linux ipconfig"):  # initramfs and OS DHCP clients
        send_broadcast(site.cmd(), "vsite", discover(WS02, vendor))
    out, _ = session.communicate(timeout=60)
    assert session.returncode == 0 and "read 4096/4096" in out and "Pattern verification failed" not in out, out
    assert read_at_1m(disk) == b"\x62" * 4096
    log_text = server_log()
    assert "ws02 booted" not in log_text and "starts again" not in log_text, log_text

    # The boot ROM's DISCOVER: the machine is in its firmware, its disk starts again.
    send_broadcast(site.cmd(), "vsite", discover(WS02, PXE_ROM_VENDOR))
    wait_for(lambda: "ws02 booted: its disk starts again" in server_log(), "the reset", 30)
    line = next(l for l in server_log().splitlines() if "ws02 booted: its disk starts again" in l)
    assert "DHCPDISCOVER" in line and "PXEClient" in line  # the cause is logged with the reset
    assert read_at_1m(disk) == bytes(4096)
    assert "Traceback" not in server_log()
