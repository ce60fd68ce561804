"""The scratch target most end-to-end tests serve: one raw disk behind one target,
on a loopback portal whose port start_server fills in (@PORT@)."""

from __future__ import annotations

SCRATCH_IQN = "iqn.2026-11.lan.bootsrv:scratch"


def scratch_config(size: str = "300MiB", extra_target: str = "", disk_extra: str = "") -> str:
    return f"""
[server]
state_dir = "state"

[iscsi]
portals = ["127.0.0.1:@PORT@"]

[[disk]]
name = "scratch"
path = "disks/scratch.img"
size = "{size}"
{disk_extra}

[[target]]
iqn = "{SCRATCH_IQN}"
luns = ["scratch"]
{extra_target}
"""


def vhd_config(path: str, size: str | None = None, readonly: bool = False) -> str:
    """The scratch target over a disk file of any format at `path` (created at start if `size`)."""
    return f"""
[iscsi]
portals = ["127.0.0.1:@PORT@"]

[[disk]]
name = "scratch"
path = "{path}"
{f'size = "{size}"' if size else ""}
readonly = {"true" if readonly else "false"}

[[target]]
iqn = "{SCRATCH_IQN}"
luns = ["scratch"]
"""
