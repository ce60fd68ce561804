"""A diskless QEMU machine boots from bootsrv: DHCP, iPXE, iSCSI sanboot of its
own differencing disk over a golden image whose boot sector prints a marker."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from demo.labnet import PROXY_CONFIG
from target.stores.vhd.create import create_dynamic
from tests.support.netboot import (LAB, MAC, TWO_CLIENTS, boot, golden_with_marker, power_off, read_at_1m,
                                   site_dhcp_server, start_bootsrv, wait_for, write_as)

pytestmark = pytest.mark.e2e


def test_bios_client_sanboots_its_own_disk(lab_netns, tmp_path):
    golden = golden_with_marker(tmp_path)
    golden_bytes = golden.read_bytes()
    upstream = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"  # plays the site's DNS for forwarding
    lab_netns.popen([upstream, "--no-daemon", "--port=5353", "--listen-address=127.0.0.1", "--bind-interfaces",
                     "--no-resolv", "--address=/example.test/10.9.9.9", f"--pid-file={tmp_path / 'up.pid'}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server_log = start_bootsrv(lab_netns, tmp_path, LAB.replace("enabled = true",
                                                                 'enabled = true\nupstream = ["127.0.0.1:5353"]'))
    # Malformed DHCP, TFTP and DNS datagrams first: the services must shrug them off.
    garbage = ("import os, socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
               "for port in (67, 69, 53, 4011):\n    for n in (0, 1, 7, 240, 300, 600):\n"
               "        s.sendto(os.urandom(n), ('10.77.0.1', port))\n"
               "s.sendto(b'\\x00\\x01../../etc/passwd\\x00octet\\x00', ('10.77.0.1', 69))\n"
               "s.sendto(b'\\x00\\x02upload\\x00octet\\x00', ('10.77.0.1', 69))\n")
    subprocess.run(lab_netns.cmd(sys.executable, "-c", garbage), check=True, timeout=30)
    boot(lab_netns, tmp_path, MAC, "ws01")
    log_text = server_log()
    assert "lease 10.77.0.101 -> 52:54:00:12:34:56 (ws01)" in log_text, log_text
    assert "answering IPv6 router solicitations on tap0" in log_text
    assert "iqn.2026-11.lan.bootsrv:initiator.ws01 logged in to iqn.2026-11.lan.bootsrv:ws01" in log_text
    lease = sqlite3.connect(tmp_path / "state" / "leases.sqlite").execute(
        "SELECT ip, state FROM leases WHERE mac = ?", (MAC,)).fetchone()
    assert lease == ("10.77.0.101", "bound")
    assert (tmp_path / "state" / "clients" / "ws01.vhd").exists()
    assert golden.read_bytes() == golden_bytes, "the golden image was modified"

    # DNS answers for the client, both ways.
    dig = lambda *q: subprocess.run(lab_netns.cmd("dig", "+short", "@10.77.0.1", *q), capture_output=True,  # noqa: E731
                                    text=True, timeout=30).stdout.strip()
    assert dig("ws01.lab") == "10.77.0.101"
    assert dig("-x", "10.77.0.101") == "ws01.lab."
    assert dig("www.example.test") == "10.9.9.9"  # not ours: forwarded to the upstream (dnsmasq here)
    # Only the client's own initiator name gets in to its target.
    target_url = "iscsi://10.77.0.1/iqn.2026-11.lan.bootsrv:ws01/0"
    stranger = subprocess.run(lab_netns.cmd("iscsi-inq", "-i", "iqn.2026-11.lan.bootsrv:initiator.ws02",
                                            target_url), capture_output=True, text=True, timeout=60)
    assert stranger.returncode != 0
    own = subprocess.run(lab_netns.cmd("iscsi-inq", "-i", "iqn.2026-11.lan.bootsrv:initiator.ws01", target_url),
                         capture_output=True, text=True, timeout=60)
    assert own.returncode == 0, own.stderr
    assert "Traceback" not in server_log()


def test_tftp_serves_boot_files_and_nothing_else(lab_netns, tmp_path):
    root = tmp_path / "tftp"
    root.mkdir()
    (root / "menu.ipxe").write_text("#!ipxe\nsanboot\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for clients")
    (root / "escape").symlink_to(secret)
    create_dynamic(tmp_path / "golden.vhd", 1 << 20)
    start_bootsrv(lab_netns, tmp_path, LAB)

    def fetch(name: str, out) -> subprocess.CompletedProcess:
        return subprocess.run(lab_netns.cmd("curl", "-sS", "--tftp-blksize", "1468", "--max-time", "20",
                                            f"tftp://10.77.0.1/{name}", "-o", str(out)),
                              capture_output=True, timeout=60)

    got = tmp_path / "undionly.kpxe"
    assert fetch("undionly.kpxe", got).returncode == 0
    assert got.read_bytes() == open("/usr/lib/ipxe/undionly.kpxe", "rb").read()
    assert fetch("menu.ipxe", tmp_path / "menu").returncode == 0
    assert (tmp_path / "menu").read_text().startswith("#!ipxe")
    for bad in ("escape", "../secret.txt", "%2e%2e/secret.txt", "/etc/passwd", "nonexistent"):
        out = tmp_path / "bad.out"
        out.unlink(missing_ok=True)
        assert fetch(bad, out).returncode != 0, bad
        assert not out.exists() or b"not for clients" not in out.read_bytes()
    upload = subprocess.run(lab_netns.cmd("curl", "-sS", "--max-time", "20", "-T", str(secret),
                                          "tftp://10.77.0.1/uploaded.txt"), capture_output=True, timeout=60)
    assert upload.returncode != 0 and not (root / "uploaded.txt").exists()
    assert "upload of 'uploaded.txt' refused" in (tmp_path / "server.log").read_text(errors="replace")


def test_two_clients_own_disks_and_reset_on_boot(lab_netns, tmp_path):
    golden = golden_with_marker(tmp_path)
    golden_bytes = golden.read_bytes()
    server_log = start_bootsrv(lab_netns, tmp_path, TWO_CLIENTS)
    power_off(boot(lab_netns, tmp_path, "52:54:00:12:34:56", "ws01"))  # one tap: one machine at a time
    power_off(boot(lab_netns, tmp_path, "52:54:00:12:34:57", "ws02"))
    assert "lease 10.77.0.102 -> 52:54:00:12:34:57 (ws02)" in server_log()
    write_as(lab_netns, "ws01", 0x61)
    write_as(lab_netns, "ws02", 0x62)
    clients = tmp_path / "state" / "clients"
    assert read_at_1m(clients / "ws01.vhd") == b"\x61" * 4096  # each write in its own disk only
    assert read_at_1m(clients / "ws02.vhd") == b"\x62" * 4096
    assert golden.read_bytes() == golden_bytes
    # ws02 is a classroom machine: its next boot starts again from the image.
    again = boot(lab_netns, tmp_path, "52:54:00:12:34:57", "ws02-again")
    power_off(again)
    assert "ws02 booted: its disk starts again" in server_log()
    assert read_at_1m(clients / "ws02.vhd") == bytes(4096)
    assert read_at_1m(clients / "ws01.vhd") == b"\x61" * 4096  # ws01 keeps its changes
    assert "Traceback" not in server_log()


PROXY = PROXY_CONFIG


def test_proxy_mode_beside_the_sites_dhcp_server(proxy_lab, tmp_path):
    lab, site = proxy_lab
    golden_with_marker(tmp_path)
    leases = site_dhcp_server(site, tmp_path)
    server_log = start_bootsrv(lab, tmp_path, PROXY, "proxy.toml")
    power_off(boot(lab, tmp_path, MAC, "proxy"))
    text = server_log()
    assert "proxy offer to 52:54:00:12:34:56 (ws01)" in text, text
    assert "initiator.ws01 logged in to iqn.2026-11.lan.bootsrv:ws01" in text
    assert "52:54:00:12:34:56" in leases.read_text()  # the address came from the site's server
    assert "lease " not in text  # and never from us
    assert "Traceback" not in text


def test_uefi_pxe_firmware_gets_the_efi_ipxe_and_then_its_disk(lab_netns, tmp_path):
    """OVMF's own PXE (virtio-net, no option ROM) asks as arch 7: it must get snponly.efi
    over TFTP, and the iPXE that starts must then be handed the client's disk."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None or not os.path.exists("/usr/share/qemu/OVMF.fd"):
        pytest.fail("qemu-system-x86 and ovmf are needed (make test installs them)")
    create_dynamic(tmp_path / "golden.vhd", 16 << 20)
    server_log = start_bootsrv(lab_netns, tmp_path, LAB)
    machine = lab_netns.popen(
        [qemu, "-machine", "q35,accel=tcg", "-m", "512", "-display", "none", "-monitor", "none",
         "-bios", "/usr/share/qemu/OVMF.fd", "-serial", f"file:{tmp_path / 'uefi-serial.txt'}",
         "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
         "-device", f"virtio-net-pci,netdev=n0,mac={MAC},romfile=", "-no-reboot"],
        stdout=open(tmp_path / "uefi.log", "wb"), stderr=subprocess.STDOUT)
    wait_for(lambda: "snponly.efi" in server_log(), "OVMF to fetch snponly.efi over TFTP", 300, machine)
    wait_for(lambda: "initiator.ws01 logged in to iqn.2026-11.lan.bootsrv:ws01" in server_log(),
             "the EFI iPXE to log in to its disk", 300, machine)
    power_off(machine)
    assert "Traceback" not in server_log()


def test_unknown_machine_gets_its_own_disk_when_an_image_is_named(lab_netns, tmp_path):
    golden = golden_with_marker(tmp_path)
    golden_bytes = golden.read_bytes()
    server_log = start_bootsrv(lab_netns, tmp_path, LAB.replace('lease_time = "1h"',
                                                                 'lease_time = "1h"\nunknown_clients = "golden"'))
    power_off(boot(lab_netns, tmp_path, "52:54:00:aa:bb:cc", "stranger"))
    assert "unknown PXE client 52:54:00:aa:bb:cc adopted as pc-525400aabbcc" in server_log()
    assert "initiator.pc-525400aabbcc logged in to iqn.2026-11.lan.bootsrv:pc-525400aabbcc" in server_log()
    assert (tmp_path / "state" / "clients" / "pc-525400aabbcc.vhd").exists()
    assert golden.read_bytes() == golden_bytes
