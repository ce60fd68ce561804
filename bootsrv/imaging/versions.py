"""An [[image]]'s versions, as recorded in the state directory.

Version 1 is the file the configuration names. Each later version is a differencing VHD
in `state_dir/images/<image>/` over the version it was edited from (so versions form a
tree: a revert followed by an edit branches). One JSON file per image, replaced
atomically, says which versions exist, which one is current and which edit is under way.
Writing it is the one step that makes a commit, a discard, a revert or a prune happen:
files made before it and not named in it are strays that `recover` removes, and files it
no longer names are removed after it. A committed version's file is never written again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from snapshots.files import file_sha256, write_text_atomic
from target.stores.errors import StoreError
from target.stores.vhd import read_footer

STATE_FILE = "versions.json"
EDIT_FILE = "edit.vhd"


@dataclass(frozen=True, slots=True)
class Version:
    number: int
    file: str
    parent: int | None  # the version it was edited from (None: version 1, or a flattened one)
    created: float
    label: str = ""
    bytes: int = 0  # what its own layer holds (version 1: the whole file)
    sha256: str = ""  # of its file when it was committed; version 1's when first recorded
    uuid: str = ""  # its VHD UUID (hex): how a client's chain is matched to a version


@dataclass(frozen=True, slots=True)
class Edit:
    """A maintenance client writing a layer over version `base`; `booted` once it powered
    on into it (from then on its target serves the layer, across restarts too). With `iso`,
    an install: its boots start that installer with the layer attached as its disk."""
    client: str
    base: int
    file: str
    started: float
    booted: bool = False
    iso: str = ""  # an install: the client boots this installer ISO with the layer as its disk


@dataclass(frozen=True, slots=True)
class ImageRecord:
    name: str
    versions: tuple[Version, ...]
    current: int
    edit: Edit | None = None
    saved: bool = field(default=False, compare=False)  # False: nothing recorded yet (only version 1)

    def version(self, number: int) -> Version:
        for version in self.versions:
            if version.number == number:
                return version
        known = ", ".join(str(v.number) for v in self.versions)
        raise ValueError(f"image {self.name!r} has no version {number} (versions: {known})")

    @property
    def current_version(self) -> Version:
        return self.version(self.current)

    def next_number(self) -> int:
        return max(v.number for v in self.versions) + 1

    def chain(self, number: int) -> list[Version]:
        """The version and those it is built on, newest first."""
        out = [self.version(number)]
        while out[-1].parent is not None:
            out.append(self.version(out[-1].parent))
        return out

    def by_uuid(self) -> dict[str, Version]:
        return {v.uuid: v for v in self.versions if v.uuid}

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "versions": [asdict(v) for v in self.versions],
                "edit": asdict(self.edit) if self.edit else None}


def folder(state_dir: Path, image: str) -> Path:
    return state_dir / "images" / image


def version_path(state_dir: Path, image: str, number: int) -> Path:
    return folder(state_dir, image) / f"v{number}.vhd"


def edit_path(state_dir: Path, image: str) -> Path:
    return folder(state_dir, image) / EDIT_FILE


def describe(path: Path, number: int, parent: int | None, label: str = "", own_bytes: int | None = None) -> Version:
    """A version record for a file as it is now (read in full once, for its sha256)."""
    return Version(number, str(path), parent, time.time(), label,
                   os.path.getsize(path) if own_bytes is None else own_bytes,
                   file_sha256(path), read_footer(path).uuid.hex())


def load(state_dir: Path, image: str, first_file: Path) -> ImageRecord:
    """What is recorded of the image; with nothing recorded, version 1 alone (the file the
    configuration names, not read here: describing it means reading all of it)."""
    path = folder(state_dir, image) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        try:
            uuid = read_footer(first_file).uuid.hex()
        except (OSError, StoreError):  # not there yet, or a raw file: no client can be built on it
            uuid = ""
        return ImageRecord(image, (Version(1, str(first_file), None, 0.0, uuid=uuid),), 1)
    versions = tuple(Version(**v) for v in data["versions"])
    edit = Edit(**data["edit"]) if data.get("edit") else None
    return ImageRecord(image, versions, int(data["current"]), edit, saved=True)


def save(state_dir: Path, record: ImageRecord) -> ImageRecord:
    where = folder(state_dir, record.name)
    where.mkdir(parents=True, exist_ok=True)
    write_text_atomic(where / STATE_FILE, json.dumps(record.as_dict(), indent=2) + "\n")
    return replace(record, saved=True)


def strays(state_dir: Path, record: ImageRecord) -> list[Path]:
    """Files in the image's folder that the record does not name: what a commit, an edit or
    a prune left when it was killed before (or after) writing the record."""
    where = folder(state_dir, record.name)
    if not where.is_dir():
        return []
    named = {Path(v.file).name for v in record.versions if Path(v.file).parent == where}
    if record.edit is not None:
        named.add(Path(record.edit.file).name)
    return sorted(p for p in where.iterdir()
                  if p.suffix in (".vhd", ".new") and p.name not in named and p.name != STATE_FILE)
