"""A private network namespace with a tap device for QEMU, made and removed by the test."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field

import pytest

from demo.labnet import make_tap_netns, remove_netns, stop_processes, wire_lab


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class Namespace:
    name: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def remove(self) -> None:
        """Stop what was started in it (by PID, never by name), then delete it."""
        stop_processes(self.processes)
        remove_netns(self.name)

    def cmd(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(self.cmd(*argv), **kwargs)
        self.processes.append(proc)
        return proc


@pytest.fixture
def lab_netns():
    """Namespace with tap0 = 10.77.0.1/24 (the server's side of the client's wire)."""
    if os.geteuid() != 0:
        pytest.fail("network boot tests need root (ip netns)")
    ns = Namespace(f"bsrv-{secrets.token_hex(4)}")
    make_tap_netns(ns.name)
    try:
        yield ns
    finally:
        ns.remove()


def two_namespaces(taps: tuple[str, ...]):
    if os.geteuid() != 0:
        pytest.fail("network boot tests need root (ip netns)")
    tag = secrets.token_hex(3)
    lab, site = Namespace(f"bsrv-lab-{tag}"), Namespace(f"bsrv-site-{tag}")
    for ns in (lab, site):
        sh("ip", "netns", "add", ns.name)
    try:
        wire_lab(lab.name, site.name, taps)
        yield lab, site
    finally:
        lab.remove()
        site.remove()


@pytest.fixture
def proxy_lab():
    """Two namespaces on one wire: `lab` (bootsrv on br0 = 10.77.0.1, QEMU's tap0 on the bridge)
    and `site` (the site's DHCP server on 10.77.0.2), joined by a veth pair."""
    yield from two_namespaces(("tap0",))


@pytest.fixture
def classroom():
    """As proxy_lab, with two machines' taps (tap0, tap1) on the lab's bridge."""
    yield from two_namespaces(("tap0", "tap1"))
