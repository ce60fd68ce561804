"""Golden images on Ceph RBD (`[[image]] path = "rbd:POOL/NAME"`): what each version, edit
and client disk is in the cluster. The lifecycle itself (manager.py) is the same as for VHD;
only these steps differ.

    version 1      POOL/NAME@v1          a protected snapshot of the configured image
    version N > 1  POOL/NAME.vN@vN       a clone (of the version it came from) made by an edit,
                                         an extend or a flatten, snapshotted and protected
    the edit       POOL/NAME.vN          that clone while the maintenance client writes it
    a client disk  POOL/bootsrv.client.C a clone of its version's snapshot (bootsrv.naming)

A version is an RBD snapshot, so it never changes once taken; clones of it are copy-on-write,
as differencing VHDs are. Each step is one librbd call, and the record (versions.json) names
a head or snapshot only once it exists: an edit's clone is named for the version it will become,
so a commit is "snapshot, then record" and a crash between them is redone by the next commit
(taking a snapshot that exists is a no-op). Heads the record does not name are strays
`recover` removes, as it removes stray VHD files.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from bootsrv.imaging.versions import ImageRecord, Version
from target.stores.errors import StoreError
from target.stores.rbd import images as rbd
from target.stores.rbd.cluster import split

SCHEME = "rbd:"
MAX_PARENTS = 64  # a client's clone chain is short; this only stops a loop on a damaged cluster


def _locator(path: str | Path) -> str:
    return str(path).removeprefix(SCHEME)


def head(image_path: str | Path, number: int) -> str:
    """The image that version `number` is a snapshot of (rbd:POOL/NAME or rbd:POOL/NAME.vN)."""
    pool, name, _ = split(_locator(image_path))
    return SCHEME + rbd.spec(pool, name if number == 1 else f"{name}.v{number}")


def number_of(head_path: str) -> int:
    """The version an edit's head becomes (rbd:POOL/NAME.vN -> N)."""
    _, name, _ = split(_locator(head_path))
    found = re.search(r"\.v(\d+)$", name)
    if found is None:
        raise StoreError(f"{head_path} is not an image version's head (POOL/NAME.vN)")
    return int(found.group(1))


def exists(path: str | Path) -> bool:
    return rbd.exists(_locator(path))


def size_of(path: str | Path) -> int:
    return rbd.size_of(_locator(path))


def take_version(head_path: str, number: int, parent: int | None, label: str = "") -> Version:
    """Snapshot `head_path` as version `number` (protected: clients are clones of it)."""
    snap = SCHEME + rbd.snapshot(_locator(head_path), f"v{number}")
    return Version(number, snap, parent, time.time(), label, own_bytes(snap))


def own_bytes(path: str) -> int:
    """Bytes the layer itself holds, its parent not counted (diff_iterate with include_parent off)."""
    found = 0

    def count(_offset: int, length: int, present: bool) -> None:
        nonlocal found
        found += length if present else 0

    with rbd.opened(_locator(path), read_only=True) as image:
        image.diff_iterate(0, image.size(), None, count, include_parent=False)
    return found


def new_layer(image_path: str | Path, number: int, base: str, *, size: int | None = None,
              flatten: bool = False) -> str:
    """A clone of version `base` (its snapshot) as the head of version `number`: empty (an edit),
    larger (`size`: an extend) or holding all its parent's data (`flatten`). A head left by a
    step that was killed is made again."""
    target = head(image_path, number)
    rbd.remove(_locator(target))
    rbd.clone(_locator(base), _locator(target))
    if size is not None or flatten:
        with rbd.opened(_locator(target)) as image:
            if size is not None:
                image.resize(size)
            if flatten:
                image.flatten()  # copies every block of the chain in: the new version stands alone
    return target


def drop_version(image_path: str | Path, version: Version) -> None:
    """A pruned version: its snapshot, then its head (version 1's head is the configured image)."""
    rbd.remove_snapshot(_locator(version.file))
    if version.number != 1:
        rbd.remove(_locator(head(image_path, version.number)))


def drop_head(head_path: str) -> None:
    rbd.remove(_locator(head_path))


def strays(image_path: str | Path, record: ImageRecord) -> list[str]:
    """Version heads (POOL/NAME.vN) in the pool that the record names neither as a version
    nor as the edit: what a killed edit, extend, flatten or discard left."""
    pool, name, _ = split(_locator(image_path))
    named = {_locator(head(image_path, v.number)) for v in record.versions}
    if record.edit is not None:
        named.add(_locator(record.edit.file))
    pattern = re.compile(re.escape(name) + r"\.v\d+$")
    return sorted(SCHEME + rbd.spec(pool, other) for other in rbd.images(pool)
                  if pattern.match(other) and rbd.spec(pool, other) not in named)


def version_below(disk: str | Path, record: ImageRecord) -> int | None:
    """The version a clone is made of, following clones of clones (a disk rolled back to one of
    its own snapshots); None when no version is below it."""
    by_file = {_locator(v.file): v.number for v in record.versions}
    current = _locator(disk)
    for _ in range(MAX_PARENTS):
        try:
            parent = rbd.parent_of(current)
        except StoreError:
            return None
        if parent is None:
            return None
        if parent in by_file:
            return by_file[parent]
        pool, name, _ = split(parent)
        current = rbd.spec(pool, name)
    return None
