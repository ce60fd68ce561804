"""The image lifecycle on an opened (not started) appliance: versions recorded and built
on, what is refused and why, and the files each step leaves (real VHD files)."""

from __future__ import annotations

import json
import os

import pytest

from bootsrv.config import load_config
from bootsrv.imaging import versions
from bootsrv.imaging.manager import ImageError
from bootsrv.runtime.appliance import Appliance
from target.stores.vhd import open_vhd
from tests.support.appliance import opened_appliance


def write(path, offset: int, data: bytes) -> None:
    store = open_vhd(path)
    try:
        store.write(offset, data)
        store.flush()
    finally:
        store.close()


def read(path, offset: int, length: int) -> bytes:
    store = open_vhd(path, readonly=True)
    try:
        return bytes(store.read(offset, length))
    finally:
        store.close()


def test_edit_commit_revert_and_prune_leave_the_files_the_record_names(tmp_path):
    with opened_appliance(tmp_path) as app:
        images, state = app.images, tmp_path / "state"
        assert images.record("golden").current == 1 and not images.record("golden").saved
        images.edit("golden", "ws01")
        edit = images.record("golden").edit
        assert edit.client == "ws01" and edit.base == 1 and not edit.booted
        write(edit.file, 4096, b"\x5a" * 512)  # what the maintenance client would have written
        record = images.commit("golden", label="term 2")
        v2 = versions.version_path(state, "golden", 2)
        assert record["current"] == 2 and record["edit"] is None and not os.path.exists(edit.file)
        assert read(v2, 4096, 512) == b"\x5a" * 512 and not os.stat(v2).st_mode & 0o222
        assert images.current_file("golden") == v2
        saved = json.loads((state / "images" / "golden" / "versions.json").read_text())
        assert [(v["number"], v["parent"], v["label"]) for v in saved["versions"]] == [(1, None, ""), (2, 1, "term 2")]
        assert saved["versions"][1]["sha256"] == versions.file_sha256(v2)

        assert images.revert("golden", 1)["current"] == 1
        images.edit("golden", "ws02")  # a branch from version 1
        assert images.commit("golden")["versions"][-1]["parent"] == 1
        assert images.record("golden").current == 3
        # ws01 and ws02 are still on version 1 (their disks were made over it); 2 is used by nobody.
        assert {images.version_of(c) for c in app.clients.values()} == {1}
        assert images.prune("golden")["pruned"] == [2] and not v2.exists()
        assert images.prune("golden")["pruned"] == []


def test_what_is_refused_says_why(tmp_path):
    with opened_appliance(tmp_path) as app:
        images = app.images
        with pytest.raises(ImageError, match="no \\[\\[image\\]\\] named 'gold'"):
            images.edit("gold", "ws01")
        with pytest.raises(ImageError, match="no client named 'ws09'"):
            images.edit("golden", "ws09")
        with pytest.raises(ImageError, match="no edit to commit"):
            images.commit("golden")
        with pytest.raises(ValueError, match="has no version 4"):
            images.revert("golden", 4)
        images.edit("golden", "ws01")
        with pytest.raises(ImageError, match="already being edited by ws01"):
            images.edit("golden", "ws02")
        with pytest.raises(ImageError, match="commit or discard that first"):
            images.revert("golden", 1)
        with pytest.raises(ImageError, match="maintenance client"):
            images.reset_client("ws01")
        images.discard("golden")
        assert images.record("golden").edit is None and images.record("golden").current == 1


def test_a_reset_client_moves_to_the_current_version_and_loses_its_changes(tmp_path):
    with opened_appliance(tmp_path) as app:
        images = app.images
        ws01 = app.clients["ws01"]
        write(ws01.disk_path, 0, b"\x0a" * 512)
        images.edit("golden", "ws02")
        write(images.record("golden").edit.file, 8192, b"\x77" * 512)
        images.commit("golden")
        assert images.version_of(ws01) == 1
        assert images.overview()[0]["versions"][0]["clients"] == ["ws01", "ws02"]
        assert images.reset_client("ws01") == {"client": "ws01", "image": "golden", "version": 2, "was": 1}
        assert images.version_of(ws01) == 2
        assert read(ws01.disk_path, 0, 512) == bytes(512) and read(ws01.disk_path, 8192, 512) == b"\x77" * 512


def test_recovery_removes_what_a_killed_step_left(tmp_path):
    with opened_appliance(tmp_path) as app:
        app.images.edit("golden", "ws01")
        app.images.commit("golden")
    folder = tmp_path / "state" / "images" / "golden"
    (folder / "v3.vhd").write_bytes(b"half a commit")
    (folder / "edit.vhd").write_bytes(b"an edit never recorded")
    os.chmod(folder / "v2.vhd", 0o644)  # killed before it was made read-only
    app = Appliance(load_config(tmp_path / "c.toml"))
    app.open_disks()
    try:
        assert sorted(p.name for p in folder.iterdir()) == ["v2.vhd", "versions.json"]
        assert not os.stat(folder / "v2.vhd").st_mode & 0o222
        assert app.images.record("golden").current == 2
    finally:
        app.inventory.close()
        app.backup.close()


def test_flatten_starts_a_short_chain_and_prune_then_drops_the_old_one(tmp_path):
    with opened_appliance(tmp_path) as app:
        images = app.images
        for pattern in (0x31, 0x32):  # versions 2 and 3, each over the one before
            images.edit("golden", "ws01")
            write(images.record("golden").edit.file, 4096 * pattern, bytes([pattern]) * 4096)
            images.commit("golden")
        before = read(images.current_file("golden"), 0, 1 << 20)
        record = images.flatten("golden", label="compacted")
        flat = images.current_file("golden")
        assert record["current"] == 4 and record["versions"][-1]["parent"] is None
        assert read(flat, 0, 1 << 20) == before and versions.read_footer(flat).disk_type != 4  # 4: differencing
        assert images.prune("golden")["pruned"] == [2, 3]  # the clients are still on version 1
        for name in ("ws01", "ws02"):
            images.reset_client(name)
        assert images.prune("golden")["pruned"] == []  # 1 is the configured file: it stays
        assert [v.number for v in images.record("golden").versions] == [1, 4]
        assert read(app.clients["ws01"].disk_path, 0, 1 << 20) == before


def test_an_install_serves_its_iso_and_scripts_its_client(tmp_path):
    iso = tmp_path / "installer.iso"
    iso.write_bytes(bytes(0x8001) + b"CD001" + bytes(4096))
    with opened_appliance(tmp_path) as app:
        images = app.images
        (tmp_path / "notes.txt").write_text("not an ISO")
        with pytest.raises(ImageError, match="not an ISO 9660 image"):
            images.install("golden", "ws01", str(tmp_path / "notes.txt"))
        images.install("golden", "ws01", str(iso))
        assert images.installing("ws01") is not None and images.installing("ws02") is None
        assert images.install_iso("/install/golden.iso") == iso
        for other in ("/install/other.iso", "/install/golden.iso/x", "/install/../golden.iso", "/golden.iso"):
            assert images.install_iso(other) is None
        script = images.install_script(app.clients["ws01"], "10.77.0.1", 3260, 8069).decode()
        assert "set initiator-iqn iqn.2026-11.lan.bootsrv:initiator.ws01\n" in script
        assert "sanhook --drive 0x80 iscsi:10.77.0.1:::0:iqn.2026-11.lan.bootsrv:ws01 || goto failed\n" in script
        assert "sanboot --drive 0x81 http://10.77.0.1:8069/install/golden.iso || goto failed\n" in script
        images.discard("golden")
        assert images.install_iso("/install/golden.iso") is None  # served only while the install is recorded
