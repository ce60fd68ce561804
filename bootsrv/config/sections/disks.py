"""[[disk]]: the files exported as LUNs."""

from __future__ import annotations

from pathlib import Path
from bootsrv.config.model import DiskConfig, default_of
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section, parse_size


def _disk(section: Section, base: Path, taken: list[DiskConfig]) -> DiskConfig:
    name = section.get("name", str, "a disk name", required=True)
    if not NAME_RE.match(name):
        section.fail("name", "letters, digits, '.', '_' or '-' (at most 64)", name)
    if any(d.name == name for d in taken):
        section.fail("name", "a name no other [[disk]] uses", name)
    disk_path = section.get("path", str, "a file path", required=True)
    readonly = section.get("readonly", bool, "true or false", default_of(DiskConfig, "readonly"))
    size = None
    if "size" in section.table:
        size = parse_size(section.get("size", (int, str), 'a size like "1GiB"'))
        if size is None or size % 512:
            section.fail("size", 'a size in bytes, a multiple of 512, like "1GiB" or "512MiB"',
                         section.table["size"])
    section.done()
    return DiskConfig(name, (base / disk_path).resolve(), readonly, size)


def parse(top: Section, base: Path) -> tuple[DiskConfig, ...]:
    disks: list[DiskConfig] = []
    for section in top.entries("disk", "[[disk]] tables"):
        disks.append(_disk(section, base, disks))
    return tuple(disks)
