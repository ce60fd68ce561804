"""The operations on a real appliance (disk files open, services not started), called as
the admin socket and the web API call them."""

import asyncio

from bootsrv.ops import dispatch
from bootsrv.runtime.view import ApplianceView
from tests.support.appliance import opened_appliance


def ask(view, op, /, **args):
    reply = asyncio.run(dispatch(view, op, args))
    assert reply["ok"], reply
    return reply["result"]


def test_status_says_what_is_served(tmp_path):
    with opened_appliance(tmp_path) as app:
        status = ask(ApplianceView.of(app), "status")
        assert status["config"] == str(tmp_path / "c.toml") and status["sessions"] == 0
        assert [d["name"] for d in status["disks"]] == ["other", "scratch", "ws01", "ws02"]
        assert status["services"] == {"dhcp": "off", "tftp": "off", "dns": "off", "http": "off"}
        assert status["clients"] == {"total": 2, "adopted": 0, "disks_open": 0}
        assert status["images"][0]["clients"] == ["ws01", "ws02"] and status["mounts"] == []


def test_a_snapshot_taken_listed_and_deleted(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        snap = ask(view, "snapshot.create", disk="ws01", label="before")
        rows = ask(view, "snapshot.list", disk="ws01")
        assert [(r["id"], r["label"], r["state"], r["exports"]) for r in rows] == [(snap["id"], "before", "ready", [])]
        assert ask(view, "status")["disks"][2]["snapshots"] == 1
        ask(view, "snapshot.delete", id=snap["id"])
        assert ask(view, "snapshot.list") == []


def test_an_edit_changes_the_file_and_is_applied_at_once(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        result = ask(view, "client.add", name="ws03", mac="52:54:00:12:34:58", image="golden")
        assert result == {"message": "client ws03 added", "applied": ["client ws03 added"], "restart_needed": []}
        assert 'name = "ws03"' in (tmp_path / "c.toml").read_text()
        assert [row["name"] for row in ask(view, "clients")] == ["ws01", "ws02", "ws03"]
        # the form the CLI sends: one operation carrying the edit's name
        result = ask(view, "config.edit", op="client.remove", args={"name": "ws03"})
        assert result["applied"] == ["client ws03 removed"]
        assert [row["name"] for row in ask(view, "clients")] == ["ws01", "ws02"]


def test_a_refused_edit_leaves_the_file_and_the_clients_as_they_were(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        before = (tmp_path / "c.toml").read_text()
        reply = asyncio.run(dispatch(view, "client.add", {"name": "ws03", "mac": "52:54:00:12:34:58",
                                                          "image": "no-such-image"}))
        assert reply["ok"] is False and "no-such-image" in reply["error"]
        assert (tmp_path / "c.toml").read_text() == before
        assert [row["name"] for row in ask(view, "clients")] == ["ws01", "ws02"]


def test_a_served_disk_grows_online_and_a_file_not_served_is_grown_alone(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        message = ask(view, "disk.extend", path=str(tmp_path / "scratch.img"), size=2 << 30)
        assert message.endswith("(served: sessions told)")
        assert app.stores["scratch"].size == 2 << 30 and (tmp_path / "scratch.img").stat().st_size == 2 << 30
        loose = tmp_path / "loose.img"
        loose.write_bytes(bytes(4096))
        assert ask(view, "disk.extend", path=str(loose), size=8192) == f"{loose} is now 8192 bytes"
        reply = asyncio.run(dispatch(view, "disk.extend", {"path": str(tmp_path / "scratch.img"), "size": 4096}))
        assert reply["ok"] is False and "shrinking" in reply["error"]
        assert app.stores["scratch"].size == 2 << 30  # refused, and served as it was
