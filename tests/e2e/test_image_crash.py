"""Issue 18 acceptance 4: the server is killed (SIGKILL at a named step, as a power cut
would stop it) during image edit, commit, revert, prune, extend, flatten and client reset. After a restart
every committed version file is as it was committed, the state names no missing file and
leaves no stray one, every disk checks clean, and each client boots the version it should:
the interrupted step is either done or not done, never half."""

from __future__ import annotations

import os
import stat

import pytest

from tests.support.cli import run_cli
from tests.support.faults_summary import record
from tests.support.images import ImageLab
from tests.support.linux_boot import sha256
from tests.support.netboot import TWO_CLIENTS, golden_with_marker

pytestmark = pytest.mark.e2e
WS01, WS02 = "52:54:00:12:34:56", "52:54:00:12:34:57"  # ws02: reset_on_boot
CONFIG = TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"')
EDIT, OWN = 0x22, 0x44  # the edit's pattern becomes version 2's; OWN: ws01's own disk


def edited(lab: ImageLab) -> None:
    lab.admin("image", "edit", "golden", "--client", "ws01")
    lab.power_on(WS01, "ws01 powering on into the edit")
    lab.write("ws01", EDIT)


def committed(lab: ImageLab) -> None:
    edited(lab)
    lab.admin("image", "commit", "golden", "--force")
    lab.power_on(WS01, "ws01 powering on (")  # back on its own disk, over version 1
    lab.write("ws01", OWN)


def reverted(lab: ImageLab) -> None:
    committed(lab)
    lab.admin("image", "revert", "golden", "--to", "1")
    lab.power_on(WS02, "ws02 booted")  # now on version 1: nothing uses version 2


TRIALS = {
    "image.edit.created": (None, ["image", "edit", "golden", "--client", "ws01"]),
    "image.commit.linked": (edited, ["image", "commit", "golden", "--force"]),
    "image.commit.recorded": (edited, ["image", "commit", "golden", "--force"]),
    "image.revert.recorded": (committed, ["image", "revert", "golden", "--to", "1"]),
    "image.prune.recorded": (reverted, ["image", "prune", "golden"]),
    "client.reset.child": (committed, ["client", "reset", "ws01", "--force"]),
    "image.extend.created": (committed, ["image", "extend", "golden", "--size", "32MiB"]),
    "image.flatten.written": (committed, ["image", "flatten", "golden"]),
}


def assert_versions_intact(lab: ImageLab, golden_digest: str) -> dict:
    state = lab.versions()
    named = [v["file"] for v in state["versions"]] + ([state["edit"]["file"]] if state["edit"] else [])
    assert all(os.path.exists(path) for path in named), named  # the state names no missing file
    folder = lab.workdir / "state" / "images" / "golden"
    found = sorted(str(p) for p in folder.glob("*.vhd")) if folder.exists() else []
    assert found == sorted(path for path in named if path.startswith(str(folder))), "a stray file is left"
    for version in state["versions"]:
        recorded = version["sha256"] or golden_digest  # version 1 is described at the first edit
        assert sha256(version["file"]) == recorded, f"version {version['number']} changed"
        if version["number"] > 1:
            assert not os.stat(version["file"]).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert sha256(lab.workdir / "golden.vhd") == golden_digest
    return state


@pytest.mark.parametrize("point", list(TRIALS))
def test_kill_9_during_an_image_step(proxy_lab, tmp_path, point):
    record("kill -9", trials=1)
    golden_digest = sha256(golden_with_marker(tmp_path))
    lab = ImageLab(*proxy_lab, tmp_path, CONFIG)
    setup, command = TRIALS[point]
    lab.start()
    try:
        if setup is not None:
            setup(lab)
    finally:
        lab.stop()
    lab.start(env={"BOOTSRV_CRASH_AT": point})
    assert lab.admin(*command, check=False).returncode != 0, "the server should have died at the crash point"
    lab.proc.wait(30)
    assert lab.proc.returncode == -9, lab.log()

    lab.start()
    try:
        state = assert_versions_intact(lab, golden_digest)
        current = state["current"]
        if point == "image.edit.created":
            assert state["edit"] is None and current == 1
        elif point == "image.commit.linked":  # not committed: the edit goes on, as ws01 left it
            assert state["edit"]["booted"] and current == 1 and lab.holds("ws01", EDIT)
            lab.admin("image", "commit", "golden", "--force")
            state = assert_versions_intact(lab, golden_digest)
            current = state["current"]
        elif point == "image.commit.recorded":
            assert state["edit"] is None and current == 2
        elif point == "image.revert.recorded":
            assert current == 1 and [v["number"] for v in state["versions"]] == [1, 2]
        elif point == "image.prune.recorded":
            assert [v["number"] for v in state["versions"]] == [1]
        elif point in ("image.extend.created", "image.flatten.written"):  # killed before the record: not done
            assert current == 2 and [v["number"] for v in state["versions"]] == [1, 2]
        else:  # client reset: done (version 2, its own data gone) or not done (version 1 and its data)
            version = lab.clients()["ws01"]["version"]
            assert (version, lab.holds("ws01", OWN)) in (("1 (current: 2)", True), ("2", False)), version
            assert version != "2" or lab.holds("ws01", EDIT)
        # A classroom machine boots the current version; so does its content.
        lab.power_on(WS02, "ws02 booted")
        assert lab.holds("ws02", EDIT if current == 2 else 0)
        assert "Traceback" not in lab.log()
    finally:
        lab.stop()
    for path in [tmp_path / "golden.vhd", *sorted((tmp_path / "state").rglob("*.vhd"))]:
        assert run_cli("disk", "check", path, cwd=tmp_path).returncode == 0, path
