"""Clients follow a new image version as their [[client]] says (issue 18), and their
snapshots and backups keep working across the move: on_image_update = "reset" starts a
persistent client from the new version at its next power-on, and an incremental export
taken after the move, over one taken before it, reads back as the disk is."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.images import ImageLab
from tests.support.netboot import TWO_CLIENTS, golden_with_marker

pytestmark = pytest.mark.e2e
WS01, WS02 = "52:54:00:12:34:56", "52:54:00:12:34:57"
CONFIG = TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"').replace(
    'name = "ws01"\nmac = "52:54:00:12:34:56"\nimage = "golden"\n',
    'name = "ws01"\nmac = "52:54:00:12:34:56"\nimage = "golden"\non_image_update = "reset"\n')
OWN, NEW = 0x44, 0x22


def export_holds(path, pattern: int) -> bool:
    """Read through qemu's own VHD driver, which follows the export's chain to its base."""
    out = subprocess.run(["qemu-io", "-r", "-f", "vpc", str(path), "-c", f"read -P {pattern} 1M 4k"],
                         capture_output=True, text=True, timeout=60).stdout
    return "read 4096/4096" in out and "Pattern verification failed" not in out


def test_a_persistent_client_with_on_image_update_reset_follows_and_its_backups_stay_right(proxy_lab, tmp_path):
    assert 'on_image_update = "reset"' in CONFIG
    golden_with_marker(tmp_path)
    lab = ImageLab(*proxy_lab, tmp_path, CONFIG)
    lab.start()
    try:
        lab.power_on(WS01, "ws01 powering on (")
        lab.write("ws01", OWN)
        first = int(lab.admin("snapshot", "create", "ws01", "--label", "before").stdout.split()[1])
        full = lab.admin("snapshot", "export", str(first), str(tmp_path / "backup")).stdout.split()[0]

        lab.admin("image", "edit", "golden", "--client", "ws02")
        lab.power_on(WS02, "ws02 powering on into the edit")
        lab.write("ws02", NEW)
        lab.admin("image", "commit", "golden", "--force")
        assert lab.clients()["ws01"]["version"] == "1 (current: 2)"

        # Its next power-on: a new version is current, so its own changes go and it starts from it.
        lab.power_on(WS01, "ws01 booted: its disk starts again from version 2 of image golden (on_image_update")
        assert lab.holds("ws01", NEW) and lab.clients()["ws01"]["version"] == "2"
        second = int(lab.admin("snapshot", "create", "ws01", "--label", "after").stdout.split()[1])
        incremental = lab.admin("snapshot", "export", str(second), str(tmp_path / "backup"),
                                "--incremental-from", str(first)).stdout.split()[0]
        assert "ok" in lab.admin("snapshot", "verify", incremental).stdout
        assert export_holds(full, OWN)  # before the move: its own data over version 1
        assert export_holds(incremental, NEW)  # after: version 2's, its own gone
        status = json.loads(lab.admin("status", "--json").stdout)
        # ws02 edited the image and has not booted since: its own disk is still on version 1.
        assert status["images"][0]["current"] == 2 and status["images"][0]["behind"] == ["ws02"]
    finally:
        lab.stop()
