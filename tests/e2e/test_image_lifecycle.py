"""A lab updates its golden image (issue 18): a maintenance client boots a writable layer
over the image and writes into it, `image commit` makes that version 2, and the other
machines follow as the admin expects, each a real Linux booted over iSCSI:

- ws02 (reset_on_boot) starts from version 2 at its next power-on;
- ws03 (persistent) keeps version 1 and its own files until `client reset`, then has
  version 2's files and no longer its own;
- after `image revert --to 1`, ws02's next boot is version 1 again;
- ws01's own disk was never touched by its maintenance boot;
- no committed version file ever changes."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.cli import lab_admin, run_cli
from tests.support.linux_boot import clean_boot_round, sha256
from tests.support.netboot import TWO_CLIENTS, start_bootsrv

pytestmark = pytest.mark.e2e
CONFIG = TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"') + """
[[client]]
name = "ws03"
mac = "52:54:00:12:34:58"
image = "golden"
"""


def clients(tmp_path) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(lab_admin(tmp_path, "client", "list", "--json"))}


@pytest.mark.timeout(1500)
def test_an_image_update_reaches_each_client_as_its_policy_says(classroom_of_three, linux_golden, tmp_path):
    lab, _site = classroom_of_three
    golden = tmp_path / "golden.vhd"
    shutil.copyfile(linux_golden, golden)
    v1_digest = sha256(golden)
    server_log = start_bootsrv(lab, tmp_path, CONFIG)
    ws01_disk = tmp_path / "state" / "clients" / "ws01.vhd"
    ws01_own = sha256(ws01_disk)

    assert "from its next power-on" in lab_admin(tmp_path, "image", "edit", "golden", "--client", "ws01")
    first = clean_boot_round(lab, tmp_path, "first", "ws01", "ws03")
    assert first["ws01"].files == ["sums"] and first["ws03"].files == ["sums"]
    assert "ws01 powering on into the edit of image golden" in server_log()
    assert sha256(ws01_disk) == ws01_own, "the maintenance boot wrote to ws01's own disk"

    # ws01 powered off without logging out: its session lingers until the NOP timeout.
    assert "current version 2 (term 2)" in lab_admin(tmp_path, "image", "commit", "golden", "--label", "term 2",
                                                   "--force")
    v2 = tmp_path / "state" / "images" / "golden" / "v2.vhd"
    v2_digest = sha256(v2)
    versions = json.loads(lab_admin(tmp_path, "image", "versions", "golden", "--json"))[0]
    assert versions["current"] == 2 and versions["edit"] is None
    assert [(v["number"], v["parent"], v["label"]) for v in versions["versions"]] == [(1, None, ""), (2, 1, "term 2")]
    assert versions["versions"][1]["sha256"] == v2_digest and versions["versions"][0]["sha256"] == v1_digest

    second = clean_boot_round(lab, tmp_path, "second", "ws02", "ws03")
    # ws02 starts from version 2: the maintenance client's file is there, nobody else's.
    assert second["ws02"].files == ["after-dhcp-1", "data-1", "sums"] and second["ws02"].writers == ["ws01"]
    # ws03 keeps version 1 and what it wrote itself.
    assert second["ws03"].writers == ["ws03"], second["ws03"].text[-3000:]
    listed = clients(tmp_path)
    assert (listed["ws03"]["version"], listed["ws02"]["version"]) == ("1 (current: 2)", "2")

    assert "boots version 2 of image golden (was on version 1)" in lab_admin(tmp_path, "client", "reset", "ws03",
                                                                          "--force")
    assert "version 1 is current" in lab_admin(tmp_path, "image", "revert", "golden", "--to", "1")
    assert "none (every version is in use)" in lab_admin(tmp_path, "image", "prune", "golden")  # ws03 is on 2

    third = clean_boot_round(lab, tmp_path, "third", "ws01", "ws02", "ws03")
    assert third["ws01"].files == ["sums"], "ws01's own disk has the edit's files"
    assert third["ws02"].files == ["sums"], "reset_on_boot did not start from version 1 after the revert"
    assert third["ws03"].writers == ["ws01"], "client reset did not bring version 2 without ws03's own files"
    listed = clients(tmp_path)
    assert listed["ws03"]["version"] == "2 (current: 1)" and listed["ws02"]["version"] == "1"

    assert sha256(golden) == v1_digest and sha256(v2) == v2_digest, "a committed version changed"
    for path in (golden, v2, *sorted((tmp_path / "state" / "clients").glob("*.vhd"))):
        assert run_cli("disk", "check", path, cwd=tmp_path).returncode == 0, path
    log = server_log()
    assert "ws02 booted: its disk starts again from version 2 of image golden" in log
    assert "ws02 booted: its disk starts again from version 1 of image golden" in log
    assert "Traceback" not in log
