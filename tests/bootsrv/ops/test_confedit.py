"""ConfigEdit: tomlkit edits that keep the admin's comments, checked by the configuration
model before the file is replaced."""

import pytest

from bootsrv.confedit import ConfigEdit
from bootsrv.config import ConfigError
from tests.support.appliance import BASE, config

COMMENTED = "# our lab: do not remove the golden image\n" + BASE


def test_edits_keep_comments_and_validate(tmp_path):
    config(tmp_path, COMMENTED)
    edit = ConfigEdit(tmp_path / "c.toml")
    edit.add_client("ws03", "52:54:00:AA:BB:CC", "golden", reset_on_boot=True)
    edit.append("target", "iqn", "iqn.2026-11.lan.bootsrv:scratch", "initiators", "iqn.2026-11.lan:ws03")
    edit.add_schedule("nightly", "0 2 * * *", ["ws*"], "none", {"daily": 7, "weekly": 0})
    saved = edit.save()
    text = (tmp_path / "c.toml").read_text()
    assert text.startswith("# our lab: do not remove the golden image\n")
    assert [c.name for c in saved.clients] == ["ws01", "ws02", "ws03"] and saved.clients[2].mac == "52:54:00:aa:bb:cc"
    assert saved.clients[2].reset_on_boot and "ip =" not in text  # empty values are left out
    scratch = next(t for t in saved.targets if t.iqn == "iqn.2026-11.lan.bootsrv:scratch")
    assert list(scratch.initiators) == ["iqn.2026-11.lan:ws03"]
    assert 'keep = {daily = 7}' in text and saved.snapshots.schedules[0].keep.daily == 7


def test_a_bad_edit_names_the_problem_and_leaves_the_file(tmp_path):
    config(tmp_path, COMMENTED)
    path = tmp_path / "c.toml"
    edit = ConfigEdit(path)
    edit.add_target("iqn.2026-11.lan.bootsrv:new", ["no-such-disk"], [])
    with pytest.raises(ConfigError, match="no-such-disk"):
        edit.save()
    assert path.read_text() == COMMENTED
    with pytest.raises(ConfigError, match="no \\[\\[client\\]\\] with name = 'ws09'"):
        ConfigEdit(path).remove("client", "name", "ws09")
    with pytest.raises(ConfigError, match="'other' is already in luns"):
        ConfigEdit(path).append("target", "iqn", "iqn.2026-11.lan.bootsrv:other", "luns", "other")
    (tmp_path / "broken.toml").write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ConfigEdit(tmp_path / "broken.toml")
