"""reload.plan: what a configuration change adds, removes, rebuilds and leaves for a restart."""

from bootsrv import naming
from bootsrv.runtime.reload import plan
from tests.support.appliance import BASE, config

def test_the_same_file_plans_nothing(tmp_path):
    old, new = config(tmp_path, BASE), config(tmp_path, BASE, "d.toml")
    changes = plan(old, new)
    assert changes.restart == []
    assert not (changes.targets_dropped or changes.disks_dropped or changes.clients_dropped)
    assert not (changes.disks_added or changes.targets_added or changes.clients_added)
    assert not changes.snapshots_changed


def test_a_changed_disk_rebuilds_its_target_only(tmp_path):
    old = config(tmp_path, BASE)
    new = config(tmp_path, BASE.replace('path = "scratch.img"\nsize = "1GiB"', 'path = "scratch.img"\nsize = "1GiB"\nreadonly = true'), "d.toml")
    changes = plan(old, new)
    assert changes.disks_dropped == {"scratch": "changed"}
    assert changes.disks_added == ["scratch"]
    assert changes.targets_dropped == {"iqn.2026-11.lan.bootsrv:scratch": "changed"}
    assert changes.targets_added == ["iqn.2026-11.lan.bootsrv:scratch"]


def test_clients_added_removed_and_changed(tmp_path):
    old = config(tmp_path, BASE)
    text = BASE.replace('name = "ws02"\nmac = "52:54:00:12:34:57"', 'name = "ws03"\nmac = "52:54:00:12:34:58"')
    text += '[[client]]\nname = "ws01x"\nmac = "52:54:00:12:34:59"\nimage = "golden"\n'
    text = text.replace('name = "ws01"\nmac = "52:54:00:12:34:56"\nimage = "golden"',
                        'name = "ws01"\nmac = "52:54:00:12:34:56"\nimage = "golden"\nreset_on_boot = true')
    changes = plan(old, config(tmp_path, text, "d.toml"))
    assert changes.clients_dropped == {"ws01": "changed", "ws02": "removed"}
    added = {c.name: c for c in changes.clients_added}
    assert sorted(added) == ["ws01", "ws01x", "ws03"]
    assert added["ws03"].target_iqn == naming.client_target_iqn("iqn.2026-11.lan.bootsrv", "ws03")
    assert added["ws03"].disk_path == naming.client_disk_path(old.server.state_dir, "ws03")
    assert not changes.disks_dropped and not changes.targets_dropped


def test_a_removed_target_and_sections_that_wait_for_a_restart(tmp_path):
    old = config(tmp_path, BASE)
    text = BASE.replace('[[target]]\niqn = "iqn.2026-11.lan.bootsrv:other"\nluns = ["other"]\n', "")
    text = text.replace('portals = ["127.0.0.1:3260"]', 'portals = ["127.0.0.1:3261"]')
    changes = plan(old, config(tmp_path, text, "d.toml"))
    assert changes.targets_dropped == {"iqn.2026-11.lan.bootsrv:other": "removed"}
    assert changes.targets_added == []
    assert changes.restart == ["iscsi"]


def test_snapshot_settings(tmp_path):
    old = config(tmp_path, BASE)
    changes = plan(old, config(tmp_path, BASE + '[snapshots]\nmin_free = "2GiB"\n', "d.toml"))
    assert changes.snapshots_changed
