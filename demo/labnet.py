"""The lab's wire, shared by the demo, the boot benchmark and the network-boot
tests: a private namespace with tap0 = 10.77.0.1/24, the lab configuration
bootsrv serves on it, and a diskless BIOS machine (QEMU + iPXE) plugged into it."""

from __future__ import annotations

import shutil
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


PROXY_CONFIG = """
[server]
state_dir = "state"

[iscsi]
portals = ["10.77.0.1:3260"]
nop_interval = "5s"

[dhcp]
mode = "proxy"
interface = "br0"

[tftp]
root = "tftp"

[[image]]
name = "golden"
path = "golden.vhd"

[[client]]
name = "ws01"
mac = "52:54:00:12:34:56"
image = "golden"
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


def wire_lab(lab: str, site: str, taps: tuple[str, ...] = ("tap0",)) -> None:
    """In namespace `lab`: bridge br0 = 10.77.0.1/24 with a tap per machine, and a veth to
    namespace `site` (vsite = 10.77.0.2/24), where a site's own DHCP server can run."""
    for ns in (lab, site):
        _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", lab, "link", "add", "br0", "type", "bridge")
    for tap in taps:
        _ip("-n", lab, "tuntap", "add", "dev", tap, "mode", "tap")
    _ip("-n", lab, "link", "add", "vlab", "type", "veth", "peer", "name", "vsite", "netns", site)
    for dev in (*taps, "vlab"):
        _ip("-n", lab, "link", "set", dev, "master", "br0")
        _ip("-n", lab, "link", "set", dev, "up")
    _ip("-n", lab, "addr", "add", "10.77.0.1/24", "dev", "br0")
    _ip("-n", lab, "link", "set", "br0", "up")
    _ip("-n", site, "addr", "add", "10.77.0.2/24", "dev", "vsite")
    _ip("-n", site, "link", "set", "vsite", "up")


def site_dhcp_argv(workdir: Path, *extra: str) -> list[str]:
    """dnsmasq as the site's own DHCP server on the `site` namespace's vsite (wire_lab)."""
    return [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--no-daemon", "--port=0", "--interface=vsite",
            "--bind-interfaces", "--dhcp-range=10.77.0.150,10.77.0.199,255.255.255.0,1h",
            f"--dhcp-leasefile={workdir / 'site.leases'}", f"--pid-file={workdir / 'site.pid'}", *extra]


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
