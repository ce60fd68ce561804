"""Changing the configuration file from the CLI (the wizards' job in Microsoft's
iSCSI target): add and remove clients, targets and disks, assign disks and
initiators. tomlkit keeps the admin's comments and layout; every edit is
checked by the one configuration model before the file is replaced (atomically),
so a bad edit names what is wrong and leaves the file as it was. The named edits
the CLI, the admin socket and the web API run are operations in `bootsrv.ops.config`."""

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

    def add_image(self, name: str, path: str) -> None:
        self._add("image", {"name": name, "path": path})

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
