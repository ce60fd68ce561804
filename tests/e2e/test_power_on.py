"""Power-on, not DHCP traffic, resets a disk (issue 16): an OS's own DHCP client
(no vendor class PXEClient) never resets a disk nor drops its session; a boot
ROM's DISCOVER does. A second namespace plays the client's NIC on the lab wire."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from tests.support.cli import run_cli
from tests.support.dhcpclient import PXE_ROM_VENDOR, discover, send_broadcast
from tests.support.netboot import TWO_CLIENTS, golden_with_marker, read_at_1m, start_bootsrv, wait_for

pytestmark = pytest.mark.e2e
WS02 = "52:54:00:12:34:57"
CONFIG = TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"')  # ws02: reset_on_boot


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

    # The firmware repeats that DISCOVER (same xid) while it waits for offers: the same
    # power-on, no second reset. Some firmware uses one xid at every boot: after a login
    # (a boot that got as far as its disk) the same xid is a new power-on.
    send_broadcast(site.cmd(), "vsite", discover(WS02, PXE_ROM_VENDOR), discover(WS02, PXE_ROM_VENDOR))
    writer = qemu_io(site, "write -P 0x63 1M 4k", "flush")
    out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0 and "wrote 4096/4096" in out, out
    send_broadcast(site.cmd(), "vsite", discover(WS02, PXE_ROM_VENDOR))
    wait_for(lambda: server_log().count("ws02 booted: its disk starts again") >= 2, "the second reset", 30)
    assert server_log().count("ws02 booted: its disk starts again") == 2, server_log()
    assert read_at_1m(disk) == bytes(4096)
    assert "Traceback" not in server_log()


def macs(prefix: str, count: int) -> list[str]:
    return [f"{prefix}:{n >> 8:02x}:{n & 255:02x}" for n in range(count)]


def test_adoption_is_for_pxe_clients_only_bounded_listed_and_removable(proxy_lab, tmp_path):
    lab, site = proxy_lab
    golden_with_marker(tmp_path)
    config = CONFIG.replace('lease_time = "1h"', 'lease_time = "1h"\nunknown_clients = "golden"\nmax_adopted = 4')
    server_log = start_bootsrv(lab, tmp_path, config)
    clients = tmp_path / "state" / "clients"
    # 300 OS and laptop DISCOVERs with random MACs: no disk for any of them.
    send_broadcast(site.cmd(), "vsite", *(discover(mac) for mac in macs("02:00:00:00", 300)))
    # Six PXE ROMs: four adopted, the fifth and sixth refused, each refusal logged once however often asked.
    roms = macs("02:00:00:01", 6)
    answers = send_broadcast(site.cmd(), "vsite", *(discover(mac, PXE_ROM_VENDOR) for mac in roms), listen=3)
    send_broadcast(site.cmd(), "vsite", *(discover(roms[4], PXE_ROM_VENDOR) for _ in range(5)))
    wait_for(lambda: server_log().count("adopted as") == 4, "four adoptions", 30)
    assert sorted(p.name for p in clients.iterdir()) == sorted(
        ["ws01.vhd", "ws02.vhd"] + [f"pc-0200000100{n:02x}.vhd" for n in range(4)])
    assert len([a for a in answers if a[28:34] == bytes.fromhex("020000010000")]) >= 1  # answered once adopted
    log_text = server_log()
    assert log_text.count("not adopting PXE client 02:00:00:01:00:04: dhcp.max_adopted = 4") == 1, log_text

    listing = json.loads(run_cli("client", "list", "--json", "-c", tmp_path / "lab.toml", check=True).stdout)
    adopted = sorted(row["name"] for row in listing if row["origin"] == "adopted")
    assert adopted == [f"pc-0200000100{n:02x}" for n in range(4)]
    removed = run_cli("client", "remove", "pc-020000010000", "--delete-disk", "-c", tmp_path / "lab.toml", check=True)
    assert "removed" in removed.stdout and not (clients / "pc-020000010000.vhd").exists()
    run_cli("client", "keep", "pc-020000010001", "--name", "ws07", "-c", tmp_path / "lab.toml", check=True)
    assert (clients / "ws07.vhd").exists() and not (clients / "pc-020000010001.vhd").exists()
    assert 'name = "ws07"' in (tmp_path / "lab.toml").read_text()
    listing = {row["name"]: row for row in json.loads(
        run_cli("client", "list", "--json", "-c", tmp_path / "lab.toml", check=True).stdout)}
    assert listing["ws07"]["origin"] == "config" and listing["ws07"]["mac"] == "02:00:00:01:00:01"
    assert sorted(n for n, row in listing.items() if row["origin"] == "adopted") == ["pc-020000010002",
                                                                                    "pc-020000010003"]
    # A sixth ROM now fits (two places freed).
    send_broadcast(site.cmd(), "vsite", discover(roms[5], PXE_ROM_VENDOR))
    wait_for(lambda: "02:00:00:01:00:05 adopted as" in server_log(), "the freed place", 30)
    assert "Traceback" not in server_log()


def test_lease_mode_leases_to_a_printer_and_makes_no_disk(proxy_lab, tmp_path):
    lab, site = proxy_lab
    golden_with_marker(tmp_path)
    start_bootsrv(lab, tmp_path, CONFIG.replace('lease_time = "1h"', 'lease_time = "1h"\nunknown_clients = "lease"'))
    (offer,) = send_broadcast(site.cmd(), "vsite", discover("02:00:00:00:05:01", b"HP LaserJet"), listen=3)
    assert offer[0] == 2 and offer[16:20] != bytes(4)  # BOOTREPLY with an address for the printer
    assert socket.inet_ntoa(offer[16:20]).startswith("10.77.0.")
    assert sorted(p.name for p in (tmp_path / "state" / "clients").iterdir()) == ["ws01.vhd", "ws02.vhd"]
