"""Growing disks that sit on other layers (issue 18, online extend): an image grows as a
new version (no committed file is written) and a classroom client boots it at the larger
size; a persistent client's own disk, with a snapshot under it, grows online while served;
and backups taken across the growth stay right."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli
from tests.support.images import ImageLab
from tests.support.linux_boot import sha256
from tests.support.netboot import TWO_CLIENTS, golden_with_marker

pytestmark = pytest.mark.e2e
WS02 = "52:54:00:12:34:57"  # reset_on_boot
CONFIG = TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"')
MiB = 1 << 20


def test_an_image_and_a_client_disk_grow_while_served(proxy_lab, tmp_path):
    golden = golden_with_marker(tmp_path, 16 * MiB)
    digest = sha256(golden)
    lab = ImageLab(*proxy_lab, tmp_path, CONFIG)
    lab.start()
    try:
        assert "extended to 32MiB; current version 2" in lab.admin("image", "extend", "golden", "--size", "32MiB").stdout
        version = lab.versions()["versions"][1]
        assert (version["parent"], version["label"]) == (1, f"extended to {32 * MiB} bytes")
        lab.power_on(WS02, "ws02 booted: its disk starts again from version 2")
        out = lab.io("ws02", "write -P 0x51 30M 4k", "read -P 0x51 30M 4k", "read -P 0 20M 4k")
        assert "wrote 4096/4096" in out and out.count("read 4096/4096") == 2

        # ws01 keeps version 1 (16 MiB): its own disk grows online, a snapshot under it.
        lab.write("ws01", 0x44)
        first = int(lab.admin("snapshot", "create", "ws01", "--label", "small").stdout.split()[1])
        disk = tmp_path / "state" / "clients" / "ws01.vhd"
        assert "sessions told" in lab.admin("disk", "extend", str(disk), "--size", "32MiB").stdout
        out = lab.io("ws01", "write -P 0x52 31M 4k", "read -P 0x52 31M 4k", "read -P 0x44 1M 4k")
        assert out.count("read 4096/4096") == 2
        second = int(lab.admin("snapshot", "create", "ws01", "--label", "large").stdout.split()[1])
        backup = tmp_path / "backup"
        lab.admin("snapshot", "export", str(first), str(backup))
        incremental = lab.admin("snapshot", "export", str(second), str(backup), "--incremental-from",
                                str(first)).stdout.split()[0]
        assert "ok" in lab.admin("snapshot", "verify", incremental).stdout
        lab.admin("snapshot", "delete", str(first))  # merges the smaller layer into the larger one
        assert lab.holds("ws01", 0x44) and "read 4096/4096" in lab.io("ws01", "read -P 0x52 31M 4k")
        assert "Traceback" not in lab.log()
    finally:
        lab.stop()
    assert sha256(golden) == digest
    for path in [golden, *sorted((tmp_path / "state").rglob("*.vhd")), *sorted(backup.glob("*.vhd"))]:
        assert run_cli("disk", "check", path, cwd=tmp_path).returncode == 0, path
