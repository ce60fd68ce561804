"""[[disk]]: the files exported as LUNs."""

from __future__ import annotations

import re
from pathlib import Path
from bootsrv.config.model import DiskConfig, default_of
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section, parse_size


RBD_PATH = re.compile(r"rbd:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(@[A-Za-z0-9_.-]+)?$")
RBD_IMAGE = re.compile(r"rbd:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def _disk(section: Section, base: Path, taken: list[DiskConfig]) -> DiskConfig:
    name = section.get("name", str, "a disk name", required=True)
    if not NAME_RE.match(name):
        section.fail("name", "letters, digits, '.', '_' or '-' (at most 64)", name)
    if any(d.name == name for d in taken):
        section.fail("name", "a name no other [[disk]] uses", name)
    disk_path = section.get("path", str, 'a file path or "rbd:POOL/IMAGE"', required=True)
    remote = disk_path.startswith("rbd:")  # a Ceph RBD image, named as QEMU names it: no file
    if remote and not RBD_PATH.match(disk_path):
        section.fail("path", 'an RBD image as "rbd:POOL/IMAGE"', disk_path)
    readonly = section.get("readonly", bool, "true or false", default_of(DiskConfig, "readonly"))
    size = None
    if "size" in section.table:
        size = parse_size(section.get("size", (int, str), 'a size like "1GiB"'))
        if size is None or size % 512:
            section.fail("size", 'a size in bytes, a multiple of 512, like "1GiB" or "512MiB"',
                         section.table["size"])
    section.done()
    return DiskConfig(name, Path(disk_path) if remote else (base / disk_path).resolve(), readonly, size)


def parse(top: Section, base: Path) -> tuple[DiskConfig, ...]:
    disks: list[DiskConfig] = []
    for section in top.entries("disk", "[[disk]] tables"):
        disks.append(_disk(section, base, disks))
    return tuple(disks)
