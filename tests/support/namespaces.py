"""Private network namespaces for the network-boot tests, and which ones exist, by the
names our tools give them.

Invariant: a Namespace stops what was started in it by PID (never by name) before it is
deleted, so a failed test leaves neither processes nor namespaces behind.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from typing import Iterator

import pytest

from demo.labnet import make_tap_netns, remove_netns, stop_processes, wire_lab


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("network boot tests need root (ip netns)")


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


def tap_namespace(prefix: str = "bsrv") -> Iterator[Namespace]:
    """A fresh namespace `prefix-...` with tap0 (demo.labnet.make_tap_netns), removed afterwards."""
    require_root()
    ns = Namespace(f"{prefix}-{secrets.token_hex(4)}")
    make_tap_netns(ns.name)
    try:
        yield ns
    finally:
        ns.remove()


def two_namespaces(taps: tuple[str, ...]) -> Iterator[tuple[Namespace, Namespace]]:
    """`lab` and `site` joined by one wire, `taps` on lab's bridge (demo.labnet.wire_lab)."""
    require_root()
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


def demo_namespaces() -> list[str]:
    """The lab demo's namespaces (bootsrv-demo-*): it must leave none behind."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in listing.splitlines() if line.startswith("bootsrv-demo-"))
