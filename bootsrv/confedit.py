"""Changing the configuration file from the CLI (the wizards' job in Microsoft's
iSCSI target): add and remove clients, targets and disks, assign disks and
initiators. tomlkit keeps the admin's comments and layout; every edit is
checked by the one configuration model before the file is replaced (atomically),
so a bad edit names what is wrong and leaves the file as it was."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from bootsrv.config import Config, ConfigError, parse_config
from snapshots.files import write_text_atomic


class ConfigEdit:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.doc = tomlkit.parse(self.path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: no such file") from None
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError(f"{self.path}: not valid TOML: {exc}") from None

    def _tables(self, key: str) -> AoT:
        """The [[key]] tables (key may be dotted: snapshots.schedule), made if missing."""
        parent: Any = self.doc
        *outer, last = key.split(".")
        for name in outer:
            if name not in parent:
                parent.append(name, tomlkit.table())
            parent = parent[name]
        if last not in parent:
            parent.append(last, tomlkit.aot())
        tables = parent[last]
        if not isinstance(tables, AoT):
            raise ConfigError(f"{self.path}: {key}: expected [[{key}]] tables")
        return tables

    def _find(self, key: str, field: str, value: str) -> tuple[int, Table]:
        for index, table in enumerate(self._tables(key)):
            if str(table.get(field, "")).lower() == value.lower():
                return index, table
        raise ConfigError(f"{self.path}: no [[{key}]] with {field} = {value!r}")

    def _add(self, key: str, values: dict[str, Any]) -> None:
        table = tomlkit.table()
        for name, value in values.items():
            if value not in (None, "", [], False):
                table[name] = value
        self._tables(key).append(table)

    # ---- edits --------------------------------------------------------------------

    def add_client(self, name: str, mac: str, image: str, ip: str = "", reset_on_boot: bool = False) -> None:
        self._add("client", {"name": name, "mac": mac.lower(), "image": image, "ip": ip,
                             "reset_on_boot": reset_on_boot})

    def add_disk(self, name: str, path: str, size: str = "", readonly: bool = False) -> None:
        self._add("disk", {"name": name, "path": path, "size": size, "readonly": readonly})

    def add_target(self, iqn: str, luns: list[str], initiators: list[str], alias: str = "") -> None:
        self._add("target", {"iqn": iqn, "luns": luns, "initiators": initiators, "alias": alias})
        if not luns:  # a target with no disk yet is allowed in the file only with an empty list
            self._find("target", "iqn", iqn)[1]["luns"] = tomlkit.array()

    def add_schedule(self, name: str, cron: str, disks: list[str], export: str, keep: dict[str, int]) -> None:
        kept = tomlkit.inline_table()
        kept.update({kind: count for kind, count in keep.items() if count})
        self._add("snapshots.schedule", {"name": name, "disks": disks, "cron": cron, "export": export})
        if kept:
            self._tables("snapshots.schedule")[-1]["keep"] = kept

    def remove(self, key: str, field: str, value: str) -> None:
        index, _ = self._find(key, field, value)
        del self._tables(key)[index]

    def append(self, key: str, field: str, value: str, list_key: str, item: str) -> None:
        _, table = self._find(key, field, value)
        items = table.setdefault(list_key, tomlkit.array())
        if item in [str(existing) for existing in items]:
            raise ConfigError(f"{self.path}: [[{key}]] {value}: {item!r} is already in {list_key}")
        items.append(item)

    # ---- save -----------------------------------------------------------------------

    def save(self) -> Config:
        """Validate with the configuration model, then replace the file atomically."""
        text = tomlkit.dumps(self.doc)
        config = parse_config(tomllib.loads(text), self.path)
        write_text_atomic(self.path, text, self.path.stat().st_mode & 0o7777)
        return config


# ---- the edits, by name: the CLI runs them here when no server runs, the server runs them
# (admin operation config.edit) when it does, then applies the saved file --------------------

def _client_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_client(a["name"], a["mac"], a["image"], a.get("ip", ""), bool(a.get("reset_on_boot")))
    return f"client {a['name']} added"


def _client_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("client", "name", a["name"])
    return f"client {a['name']} removed (its disk file and snapshots stay)"


def _target_create(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_target(a["iqn"].lower(), list(a.get("disks", [])), [i.lower() for i in a.get("initiators", [])],
                    a.get("alias", ""))
    return f"target {a['iqn']} created"


def _target_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("target", "iqn", a["iqn"])
    return f"target {a['iqn']} removed"


def _target_assign(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.append("target", "iqn", a["iqn"], "luns", a["disk"])
    return f"disk {a['disk']} assigned to {a['iqn']}"


def _target_allow(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.append("target", "iqn", a["iqn"], "initiators", a["initiator"].lower())
    return f"initiator {a['initiator']} allowed on {a['iqn']}"


def _disk_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_disk(a["name"], a["path"], a.get("size", ""), bool(a.get("readonly")))
    return f"disk {a['name']} added"


def _disk_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("disk", "name", a["name"])
    return f"disk {a['name']} removed (its file stays)"


def _schedule_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_schedule(a["name"], a["cron"], list(a.get("disks", ["*"])), a.get("export", "none"), a.get("keep", {}))
    return f"schedule {a['name']} added"


def _schedule_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("snapshots.schedule", "name", a["name"])
    return f"schedule {a['name']} removed (its snapshots stay)"


EDITS = {
    "client.add": _client_add, "client.remove": _client_remove,
    "target.create": _target_create, "target.remove": _target_remove,
    "target.assign": _target_assign, "target.allow": _target_allow,
    "disk.add": _disk_add, "disk.remove": _disk_remove,
    "schedule.add": _schedule_add, "schedule.remove": _schedule_remove,
}


def edit_config(path: str | Path, op: str, args: dict[str, Any]) -> str:
    """Run one named edit and save; returns what was done. ConfigError says what is wrong."""
    edit = EDITS.get(op)
    if edit is None:
        raise ConfigError(f"no configuration edit {op!r}; edits: {', '.join(sorted(EDITS))}")
    editor = ConfigEdit(path)
    try:
        message = edit(editor, args)
    except KeyError as exc:
        raise ConfigError(f"{op}: {exc.args[0]} is needed") from None
    editor.save()
    return message
