"""A small good configuration the config tests mutate one key at a time, a writer for it,
and the one-disk, one-target configuration the single-initiator tests serve."""

from pathlib import Path

import pytest

from bootsrv.config import ConfigError, load_config

GOOD = """
[server]
state_dir = "state"
[iscsi]
portals = ["127.0.0.1:3260", "[::1]:3261"]
[[disk]]
name = "scratch"
path = "disks/scratch.img"
size = "1GiB"
[[target]]
iqn = "iqn.2026-11.lan.bootsrv:Scratch"
luns = ["scratch"]
initiators = ["iqn.1991-05.com.microsoft:WS01"]
chap = { user = "u", secret = "s12345678901" }
mutual_chap = { user = "t", secret = "s98765432109" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def refusal(path: Path) -> str:
    """The one-line ConfigError load_config raises for the file at `path`."""
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def one_target(portal: str, disk: str, path: Path | str, iqn: str, initiator: str) -> str:
    """A served configuration of one [[disk]] behind one target that only `initiator` may
    log in to (no DHCP, no TFTP): what the tests of a single real initiator need."""
    return f"""
[server]
state_dir = "state"

[iscsi]
portals = ["{portal}"]
nop_interval = "5s"

[[disk]]
name = "{disk}"
path = "{path}"

[[target]]
iqn = "{iqn}"
luns = ["{disk}"]
initiators = ["{initiator}"]
"""
