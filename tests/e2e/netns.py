"""A private network namespace with a tap device for QEMU, made and removed by the test."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field

import pytest


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class Namespace:
    name: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def remove(self) -> None:
        """Stop what was started in it (by PID, never by name), then delete it."""
        stop_processes(self.processes)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)

    def cmd(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(self.cmd(*argv), **kwargs)
        self.processes.append(proc)
        return proc


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def lab_netns():
    """Namespace with tap0 = 10.77.0.1/24 (the server's side of the client's wire)."""
    if os.geteuid() != 0:
        pytest.fail("network boot tests need root (ip netns)")
    ns = Namespace(f"bsrv-{secrets.token_hex(4)}")
    sh("ip", "netns", "add", ns.name)
    try:
        sh("ip", "-n", ns.name, "link", "set", "lo", "up")
        sh("ip", "-n", ns.name, "tuntap", "add", "dev", "tap0", "mode", "tap")
        sh("ip", "-n", ns.name, "addr", "add", "10.77.0.1/24", "dev", "tap0")
        sh("ip", "-n", ns.name, "link", "set", "tap0", "up")
        yield ns
    finally:
        ns.remove()


MARKER = b"BOOTSRV-BOOT-SECTOR-RAN"


def marker_boot_sector(marker: bytes = MARKER) -> bytes:
    """16-bit code at 0x7c00 that writes `marker` to COM1 (0x3f8) and halts."""
    code = bytearray()
    code += b"\xfa\xfc"  # cli; cld
    code += b"\x31\xc0\x8e\xd8"  # xor ax,ax; mov ds,ax
    si_at = len(code)
    code += b"\xbe\x00\x00"  # mov si, message (patched below)
    code += b"\xba\xf8\x03"  # mov dx, 0x3f8
    loop = len(code)
    code += b"\xac"  # lodsb
    code += b"\x84\xc0"  # test al, al
    code += b"\x74\x03"  # jz done
    code += b"\xee"  # out dx, al
    code += bytes((0xEB, (loop - (len(code) + 2)) & 0xFF))  # jmp loop
    done = len(code)
    code += b"\xf4"  # hlt
    code += bytes((0xEB, (done - (len(code) + 2)) & 0xFF))  # jmp done
    message = 0x7C00 + len(code)
    code[si_at + 1: si_at + 3] = message.to_bytes(2, "little")
    code += marker + b"\r\n\0"
    sector = bytearray(512)
    sector[: len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


@pytest.fixture
def proxy_lab():
    """Two namespaces on one wire: `lab` (bootsrv on br0 = 10.77.0.1, QEMU's tap0 on the bridge)
    and `site` (the site's DHCP server on 10.77.0.2), joined by a veth pair."""
    if os.geteuid() != 0:
        pytest.fail("network boot tests need root (ip netns)")
    tag = secrets.token_hex(3)
    lab, site = Namespace(f"bsrv-lab-{tag}"), Namespace(f"bsrv-site-{tag}")
    for ns in (lab, site):
        sh("ip", "netns", "add", ns.name)
    try:
        for ns in (lab, site):
            sh("ip", "-n", ns.name, "link", "set", "lo", "up")
        sh("ip", "-n", lab.name, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", lab.name, "tuntap", "add", "dev", "tap0", "mode", "tap")
        sh("ip", "-n", lab.name, "link", "add", "vlab", "type", "veth", "peer", "name", "vsite",
           "netns", site.name)
        for dev in ("tap0", "vlab"):
            sh("ip", "-n", lab.name, "link", "set", dev, "master", "br0")
            sh("ip", "-n", lab.name, "link", "set", dev, "up")
        sh("ip", "-n", lab.name, "addr", "add", "10.77.0.1/24", "dev", "br0")
        sh("ip", "-n", lab.name, "link", "set", "br0", "up")
        sh("ip", "-n", site.name, "addr", "add", "10.77.0.2/24", "dev", "vsite")
        sh("ip", "-n", site.name, "link", "set", "vsite", "up")
        yield lab, site
    finally:
        lab.remove()
        site.remove()
