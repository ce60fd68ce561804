"""Snapshots, protection and clones of RBD images: the layers that golden-image versions,
client disks and point-in-time snapshots are made of on Ceph.

A version or a snapshot is an RBD snapshot (`POOL/IMAGE@SNAP`), protected while clones may be
made of it; a client's disk is a copy-on-write clone of one (format 2, layering). Each call is
one librbd operation: every step the callers take leaves the cluster in a state a restart can
read back (list_snaps, parent_of), so crash safety is the callers' order of steps, as with VHD.
Failures are StoreErrors naming the image and the cluster in one line.

These calls wait on the network: never on the event loop.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from target.stores.errors import FormatError, StoreError
from target.stores.rbd.cluster import connect, reason, settings, split

# What a new image or clone gets: layering for clones, exclusive-lock so that one node at a time
# writes a disk, object-map and fast-diff so that diff_iterate (exports, held bytes) does not
# read every object.
FEATURES_NAMES = ("layering", "exclusive-lock", "object-map", "fast-diff")


def features() -> int:
    import rbd
    return (rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK | rbd.RBD_FEATURE_OBJECT_MAP
            | rbd.RBD_FEATURE_FAST_DIFF)


def spec(pool: str, image: str, snap: str | None = None) -> str:
    """The locator in QEMU's style: POOL/IMAGE[@SNAP]."""
    return f"{pool}/{image}" + (f"@{snap}" if snap else "")


def _fail(locator: str, what: str, exc: BaseException) -> StoreError:
    return StoreError(f"rbd:{locator}: {what}: {reason(exc)} ({settings().describe()})")


@contextlib.contextmanager
def ioctx(pool: str) -> Iterator[Any]:
    import rados
    try:
        context = connect().open_ioctx(pool)
    except rados.ObjectNotFound:
        raise StoreError(f"rbd: no pool {pool!r} ({settings().describe()})") from None
    except rados.Error as exc:
        raise StoreError(f"rbd: pool {pool!r}: {reason(exc)} ({settings().describe()})") from None
    try:
        yield context
    finally:
        context.close()


@contextlib.contextmanager
def opened(locator: str, *, read_only: bool = False) -> Iterator[Any]:
    """An rbd.Image for a management call (not for serving I/O: that is RbdStore)."""
    import rbd
    pool, name, snap = split(locator)
    with ioctx(pool) as context:
        try:
            image = rbd.Image(context, name, snapshot=snap, read_only=read_only)
        except rbd.Error as exc:
            raise _fail(locator, "open", exc) from None
        try:
            yield image
        finally:
            image.close()


def exists(locator: str) -> bool:
    """Does the image (and, for POOL/IMAGE@SNAP, the snapshot) exist?"""
    import rbd
    pool, name, snap = split(locator)
    with ioctx(pool) as context:
        try:
            with contextlib.closing(rbd.Image(context, name, read_only=True)) as image:
                return snap is None or any(s["name"] == snap for s in image.list_snaps())
        except rbd.ImageNotFound:
            return False
        except rbd.Error as exc:
            raise _fail(locator, "look up", exc) from None


def snapshots(locator: str) -> list[str]:
    """The image's snapshot names, oldest first."""
    import rbd
    try:
        with opened(locator, read_only=True) as image:
            return [s["name"] for s in sorted(image.list_snaps(), key=lambda s: s["id"])]
    except rbd.Error as exc:
        raise _fail(locator, "list snapshots", exc) from None


def snapshot(locator: str, name: str, *, protect: bool = True) -> str:
    """Take snapshot `name` of the image (protected, so it can be cloned); returns its locator.
    The caller holds the image's writes: librbd snapshots what the OSDs have."""
    import rbd
    with opened(locator) as image:
        try:
            if not any(s["name"] == name for s in image.list_snaps()):
                image.create_snap(name)
            if protect and not image.is_protected_snap(name):
                image.protect_snap(name)
        except rbd.Error as exc:
            raise _fail(f"{locator}@{name}", "snapshot", exc) from None
    return f"{locator}@{name}"


def remove_snapshot(locator: str) -> None:
    """Unprotect and remove POOL/IMAGE@SNAP; a clone still made of it keeps it (StoreError)."""
    import rbd
    pool, name, snap = split(locator)
    if snap is None:
        raise FormatError(f"rbd:{locator}: a snapshot is named POOL/IMAGE@SNAP")
    with opened(spec(pool, name)) as image:
        try:
            if not any(s["name"] == snap for s in image.list_snaps()):
                return
            if image.is_protected_snap(snap):
                image.unprotect_snap(snap)
            image.remove_snap(snap)
        except rbd.ImageBusy:
            raise StoreError(f"rbd:{locator}: clones are still made of it") from None
        except rbd.Error as exc:
            raise _fail(locator, "remove snapshot", exc) from None


def rollback(locator: str) -> None:
    """The image's own content becomes snapshot SNAP's again (rbd snap rollback POOL/IMAGE@SNAP)."""
    import rbd
    pool, name, snap = split(locator)
    with opened(spec(pool, name)) as image:
        try:
            image.rollback_to_snap(snap)
        except rbd.Error as exc:
            raise _fail(locator, "roll back", exc) from None


def clone(parent: str, child: str) -> None:
    """A copy-on-write clone `child` (POOL/IMAGE) of the protected snapshot `parent`
    (POOL/IMAGE@SNAP). Refuses to overwrite."""
    import rbd
    parent_pool, parent_name, parent_snap = split(parent)
    child_pool, child_name, child_snap = split(child)
    if parent_snap is None or child_snap is not None:
        raise FormatError(f"rbd:{child}: a clone is made of POOL/IMAGE@SNAP, as POOL/IMAGE (got {parent})")
    with ioctx(parent_pool) as source, ioctx(child_pool) as dest:
        try:
            rbd.RBD().clone(source, parent_name, parent_snap, dest, child_name, features=features())
        except rbd.ImageExists:
            raise StoreError(f"rbd:{child} already exists") from None
        except rbd.Error as exc:
            raise _fail(child, f"clone of {parent}", exc) from None


def remove(locator: str) -> None:
    """Remove the image and its (unprotected) snapshots; absent already is fine."""
    import rbd
    pool, name, snap = split(locator)
    if snap is not None:
        raise FormatError(f"rbd:{locator}: remove_snapshot removes a snapshot")
    with ioctx(pool) as context:
        try:
            with contextlib.closing(rbd.Image(context, name)) as image:
                for s in image.list_snaps():
                    if image.is_protected_snap(s["name"]):
                        image.unprotect_snap(s["name"])
                    image.remove_snap(s["name"])
        except rbd.ImageNotFound:
            return
        except rbd.Error as exc:
            raise _fail(locator, "remove its snapshots", exc) from None
        try:
            rbd.RBD().remove(context, name)
        except rbd.ImageNotFound:
            pass
        except rbd.Error as exc:
            raise _fail(locator, "remove", exc) from None


def parent_of(locator: str) -> str | None:
    """The snapshot the image is a clone of (POOL/IMAGE@SNAP), or None if it stands alone."""
    import rbd
    with opened(locator, read_only=True) as image:
        try:
            pool, name, snap = image.parent_info()
        except rbd.ImageNotFound:
            return None
        except rbd.Error as exc:
            raise _fail(locator, "parent", exc) from None
    return spec(pool, name, snap)


def size_of(locator: str) -> int:
    with opened(locator, read_only=True) as image:
        return image.size()


def images(pool: str) -> list[str]:
    """The names of the images in the pool."""
    import rbd
    with ioctx(pool) as context:
        try:
            return list(rbd.RBD().list(context))
        except rbd.Error as exc:
            raise StoreError(f"rbd: pool {pool!r}: list images: {reason(exc)} ({settings().describe()})") from None


def rename(locator: str, new: str) -> None:
    """POOL/IMAGE -> POOL/NEW (librbd renames within a pool only)."""
    import rbd
    pool, name, _ = split(locator)
    new_pool, new_name, _ = split(new)
    if new_pool != pool:
        raise StoreError(f"rbd:{locator} cannot move to pool {new_pool!r}: an image is renamed within its pool")
    with ioctx(pool) as context:
        try:
            rbd.RBD().rename(context, name, new_name)
        except rbd.Error as exc:
            raise _fail(locator, f"rename to {new_name}", exc) from None
