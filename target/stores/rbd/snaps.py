"""What the snapshot engine asks of RBD beyond images.py: the ranges that differ between two
points in time of an image (diff_iterate), the bytes a snapshot holds as `rbd du` counts them,
and the clones made of a snapshot.

These calls wait on the network: never on the event loop.
"""

from __future__ import annotations

from target.stores.rbd.cluster import split
from target.stores.rbd.images import _fail, opened, snapshots, spec

Change = tuple[int, int, bool]  # (offset, length, holds data): False = discarded or never written


def changes(locator: str, since: str | None, *, include_parent: bool = True,
            whole_object: bool = False) -> list[Change]:
    """Where POOL/IMAGE@SNAP (or the image itself) differs from its snapshot `since` (None: from
    an empty image), sorted. Exact to librbd's extents unless `whole_object` (then per object,
    from the object map: fast)."""
    import rbd
    found: list[Change] = []
    with opened(locator, read_only=True) as image:
        try:
            image.diff_iterate(0, image.size(), since, lambda offset, length, exists: found.append(
                (offset, length, bool(exists))), include_parent=include_parent, whole_object=whole_object)
        except rbd.Error as exc:
            raise _fail(locator, f"changes since {since or 'creation'}", exc) from None
    return sorted(found)


def used_bytes(locator: str) -> int:
    """What `rbd du` shows as USED for POOL/IMAGE@SNAP: the objects written between the image's
    snapshot before it (or the image's creation) and it, not counting a clone's parent."""
    pool, image, snap = split(locator)
    names = snapshots(spec(pool, image))
    before = names[names.index(snap) - 1] if snap in names and names.index(snap) > 0 else None
    return sum(length for _, length, exists in changes(locator, before, include_parent=False, whole_object=True)
               if exists)


def clones_of(locator: str) -> list[str]:
    """The images cloned from POOL/IMAGE@SNAP (POOL/IMAGE each; trashed ones marked)."""
    import rbd
    with opened(locator, read_only=True) as image:
        try:
            children = list(image.list_children2())
        except rbd.Error as exc:
            raise _fail(locator, "list its clones", exc) from None
    return [spec(child["pool"], child["image"]) + (" (in the trash)" if child.get("trash") else "")
            for child in children]
