"""The lab's wire, shared by the demo, the boot benchmark and the network-boot
tests: a private namespace with tap0 = 10.77.0.1/24, the lab configuration
bootsrv serves on it, and a diskless BIOS machine (QEMU + iPXE) plugged into it."""

from __future__ import annotations

import subprocess
from pathlib import Path

CLIENT_MAC = "52:54:00:12:34:56"
LAB_CONFIG = """
[server]
state_dir = "state"

[iscsi]
portals = ["10.77.0.1:3260"]
nop_interval = "5s"

[dhcp]
mode = "full"
interface = "tap0"
pool = "10.77.0.100-10.77.0.199"
router = "10.77.0.1"
domain = "lab"
lease_time = "1h"

[dns]
enabled = true

[tftp]
root = "tftp"

[[image]]
name = "golden"
path = "golden.vhd"

[[client]]
name = "ws01"
mac = "52:54:00:12:34:56"
image = "golden"
ip = "10.77.0.101"
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def make_tap_netns(name: str) -> None:
    """A namespace whose tap0 (10.77.0.1/24) is the server's side of the client's wire."""
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "tuntap", "add", "dev", "tap0", "mode", "tap")
        _ip("-n", name, "addr", "add", "10.77.0.1/24", "dev", "tap0")
        _ip("-n", name, "link", "set", "tap0", "up")
    except subprocess.CalledProcessError:
        remove_netns(name)
        raise


def remove_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Stop what we started, by PID (never by name), newest first."""
    for proc in reversed(processes):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bios_client(serial: Path, mac: str = CLIENT_MAC, qemu: str = "qemu-system-x86_64") -> list[str]:
    """A diskless BIOS machine on tap0: SeaBIOS, iPXE's e1000 ROM, network boot, COM1 to a file."""
    return [qemu, "-machine", "pc,accel=tcg", "-m", "256", "-display", "none", "-monitor", "none",
            "-serial", f"file:{serial}", "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device", f"e1000,netdev=n0,mac={mac}", "-boot", "n", "-no-reboot"]
