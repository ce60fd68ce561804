"""The lab of the installer-ISO tests, standing in for bootsrv's own `image install` until it
exists: bootsrv serves one empty disk over iSCSI (its DHCP off), dnsmasq gives iPXE an
address and a script over TFTP, and tests/support/rangehttp.py serves the ISO.

What this environment's iPXE (Debian ipxe-qemu 1.0.0+git-20190125, SeaBIOS) needs, found
by trying: `sanhook` takes drive 0x80, so `sanboot` of the ISO must name another drive
(the default, 0x80 again, fails with "Could not open SAN device: Error 0x03232019", drive
in use); hooking the disk as 0x81 instead and booting the ISO as 0x80 fails ("Input/output
error 0x1d852039"), because the hooked disk's natural number is 0x80 and iPXE remaps every
call for 0x80 to it. The EFI iPXE of the same ROM (under OVMF) runs the same script: it
registers the same drive numbers, and OVMF finds the ISO's EFI El Torito image itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.config_sample import one_target
from tests.support.linux_boot import Console, linux_client, wait_powered_off
from tests.support.netboot import wait_for
from tests.support.paths import checkout_env

SERVER = "10.77.0.1"
HTTP_PORT = 8080
TARGET = "iqn.2026-11.lan.bootsrv:install"
INITIATOR = "iqn.2026-11.lan.bootsrv:initiator.ws01"
MAC = "52:54:00:12:34:56"
ISO_NAME = "installer.iso"
# iPXE's `echo` of a failure reaches COM1 (sercon) as a report line the Console sees.
FAILED = "echo bootsrv-linux: FAILED iPXE ${errno}\n"


def bootsrv_config(disk: Path) -> str:
    """One iSCSI target with `disk` as LUN 0, for INITIATOR only; no DHCP, no TFTP."""
    return one_target(f"{SERVER}:3260", "install", disk, TARGET, INITIATOR)


def install_script() -> str:
    """The client's disk as drive 0x80 (described in the iBFT), then the ISO as a CD on 0x81."""
    return (f"#!ipxe\nset initiator-iqn {INITIATOR}\n"
            f"sanhook iscsi:{SERVER}::::{TARGET} || goto failed\n"
            f"sanboot --drive 0x81 http://{SERVER}:{HTTP_PORT}/{ISO_NAME} || goto failed\n"
            f":failed\n{FAILED}")


def disk_script() -> str:
    """A plain diskless boot of the same disk."""
    return (f"#!ipxe\nset initiator-iqn {INITIATOR}\n"
            f"sanboot iscsi:{SERVER}::::{TARGET} || goto failed\n:failed\n{FAILED}")


def start_http(ns, root: Path, log: Path) -> subprocess.Popen:
    """The range-capable HTTP server on SERVER:HTTP_PORT in the namespace, once it listens."""
    proc = ns.popen([sys.executable, "-m", "tests.support.rangehttp", str(root), SERVER, str(HTTP_PORT)],
                    stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=checkout_env())
    wait_for(lambda: "serving " in log.read_text(errors="replace"), "the HTTP server", 30, proc)
    return proc


def start_dnsmasq(ns, workdir: Path) -> Path:
    """dnsmasq on tap0: DHCP for iPXE and the OS, TFTP of workdir/ipxe/boot.ipxe (write it
    with set_script); returns its log. Option 175.176 spares iPXE its ProxyDHCP wait."""
    tftp = workdir / "ipxe"
    tftp.mkdir(exist_ok=True)
    log = workdir / "dnsmasq.log"
    proc = ns.popen([shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--no-daemon", "--port=0",
                     "--interface=tap0", "--bind-interfaces", "--dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h",
                     f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}", f"--pid-file={workdir / 'dnsmasq.pid'}",
                     "--enable-tftp", f"--tftp-root={tftp}", "--dhcp-boot=boot.ipxe",
                     "--dhcp-option=encap:175,176,1b", "--log-dhcp"], stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    wait_for(lambda: "started, version" in log.read_text(errors="replace"), "dnsmasq", 30, proc)
    return log


def set_script(workdir: Path, script: str) -> None:
    """What iPXE runs at the next power-on (dnsmasq reads the file at each request)."""
    (workdir / "ipxe" / "boot.ipxe").write_text(script)


def power_on_once(ns, workdir: Path, firmware: str, tag: str) -> Console:
    """Power on the machine on tap0 and wait until it powered itself off. Under SeaBIOS a
    boot that finds nothing to boot reboots after 1 s instead of waiting forever, and with
    QEMU's -no-reboot a reboot ends the machine: a failed iPXE script shows up at once."""
    serial = workdir / f"ws01-{tag}.serial"
    argv = linux_client(firmware, serial, MAC, "tap0")
    if firmware == "bios":
        argv += ["-boot", "reboot-timeout=1000"]
    machine = ns.popen(argv, stdout=open(workdir / f"ws01-{tag}.qemu.log", "wb"), stderr=subprocess.STDOUT)
    wait_powered_off({"ws01": machine})
    return Console.read(serial)


def range_reads(http_log: Path) -> int:
    """How many ranged GETs of the ISO the HTTP server answered."""
    return sum(1 for line in http_log.read_text(errors="replace").splitlines()
               if f"GET /{ISO_NAME}" in line and " 206 bytes=" in line)
