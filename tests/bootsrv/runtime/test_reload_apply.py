"""reload.apply on a real inventory (real disk files, a real snapshot catalog): what the plan
says is what the directory, the stores and the by-MAC table the DHCP policy reads end up with."""

from bootsrv.runtime.reload import apply, plan
from tests.support.appliance import BASE, BASE_IQN, config, serving

def test_apply_removes_adds_and_rebuilds(tmp_path):
    old, inventory, dropped = serving(tmp_path)
    text = BASE.replace('name = "ws02"\nmac = "52:54:00:12:34:57"', 'name = "ws03"\nmac = "52:54:00:12:34:58"')
    text = text.replace('path = "scratch.img"\nsize = "1GiB"', 'path = "scratch.img"\nsize = "1GiB"\nreadonly = true')
    new = config(tmp_path, text, "d.toml")
    applied = apply(plan(old, new), old, new, inventory)
    assert applied == [f"target {BASE_IQN}:scratch changed", "disk scratch changed", "client ws02 removed",
                       "disk scratch added", "client ws03 added"]
    assert sorted(inventory.clients) == ["ws01", "ws03"]
    assert sorted(inventory.by_mac) == ["52:54:00:12:34:56", "52:54:00:12:34:58"]
    assert sorted(inventory.stores) == ["client:ws01", "client:ws03", "other", "scratch"]
    assert inventory.stores["scratch"].readonly
    assert sorted(inventory.directory.targets) == [f"{BASE_IQN}:{n}" for n in ("other", "scratch", "ws01", "ws03")]
    assert dropped == [f"{BASE_IQN}:scratch", f"{BASE_IQN}:ws02"]  # their sessions end
    assert sorted(inventory.backup.engine.volumes) == ["other", "scratch", "ws01", "ws03"]
    assert inventory.config is new and inventory.backup.config is new
    inventory.close()
    inventory.backup.close()


def test_an_adopted_client_of_the_same_name_keeps_its_place(tmp_path):
    old, inventory, _ = serving(tmp_path)
    adopted = inventory.clients["ws02"]
    inventory.remove_client("ws02")
    text = BASE.replace('[[client]]\nname = "ws02"\nmac = "52:54:00:12:34:57"\nimage = "golden"\n', "")
    middle = config(tmp_path, text, "m.toml")  # served without ws02, then ws02 adopted
    inventory.add_client(adopted)
    assert apply(plan(middle, old), middle, old, inventory) == []
    assert inventory.clients["ws02"] is adopted
    inventory.close()
    inventory.backup.close()
