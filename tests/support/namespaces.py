"""Which network namespaces exist, by the names our tools give them."""

from __future__ import annotations

import subprocess


def demo_namespaces() -> list[str]:
    """The lab demo's namespaces (bootsrv-demo-*): it must leave none behind."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in listing.splitlines() if line.startswith("bootsrv-demo-"))
