"""Which backend serves a disk: backends registered by name, and the one rule that picks one.

As tgt registers bs_rdwr, bs_aio and bs_rbd by name (usr/bs.c), each backend
here is a `Backend` with a name, how to open and create its stores, and which
disks it claims. `open_store` and `create_store` are the only places that
decide; nothing else looks at a path's suffix. The rule, first match wins:

1. `scheme:locator`, for a backend registered with that scheme (`rbd:POOL/IMAGE`,
   target/stores/rbd/): the locator goes to that backend.
2. the path's suffix, case-insensitive: `.vhd` is a VHD (fixed, dynamic or
   differencing, told apart by its footer).
3. with `sniff=True` (tools that inspect files an admin names), a backend that
   recognizes the file's content (a VHD footer at the end).
4. otherwise raw: the disk's bytes are the file's bytes.

A new backend registers itself with `register(Backend(...))` in its module and
is imported below, next to the built-in ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from target.stores.errors import FormatError, StoreError
from target.stores.layered import LayeredStore
from target.stores.raw import RawStore
from target.stores.rbd import RbdStore, create as create_rbd, images as rbd_images
from target.stores.vhd.create import create_differencing, create_dynamic
from target.stores.vhd.store import open_vhd, read_footer

Locator = str  # a path, or what follows `scheme:`


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    open: Callable[[Locator, bool], LayeredStore]  # (locator, readonly)
    create: Callable[[Locator, int], None]  # a new, empty disk of a size; refuses to overwrite
    # A new layer over a parent (a differencing disk); None if the backend has no layers.
    create_over: Callable[[Locator, Locator], None] | None = None
    suffixes: tuple[str, ...] = ()  # lower case, with the dot
    # Delete a disk (absent already is fine) and rename one; None: it is a file (unlink, rename).
    remove: Callable[[Locator], None] | None = None
    rename: Callable[[Locator, Locator], None] | None = None
    scheme: str | None = None  # claims "scheme:..." names
    recognizes: Callable[[Locator], bool] | None = None  # content sniffing, for rule 3


_BACKENDS: dict[str, Backend] = {}
_FALLBACK = "raw"


def register(backend: Backend) -> None:
    _BACKENDS[backend.name] = backend


def backend_for(path: str | os.PathLike[str], *, sniff: bool = False) -> tuple[Backend, Locator]:
    """The backend that serves `path` and the locator to hand it (see the module's rule)."""
    name = os.fspath(path)
    scheme, sep, rest = name.partition(":")
    if sep:
        for backend in _BACKENDS.values():
            if backend.scheme == scheme:
                return backend, rest
    suffix = Path(name).suffix.lower()
    for backend in _BACKENDS.values():
        if suffix and suffix in backend.suffixes:
            return backend, name
    if sniff:
        for backend in _BACKENDS.values():
            if backend.recognizes is not None and backend.recognizes(name):
                return backend, name
    return _BACKENDS[_FALLBACK], name


def _named(backend: str | None, path: str | os.PathLike[str], sniff: bool) -> tuple[Backend, Locator]:
    if backend is None:
        return backend_for(path, sniff=sniff)
    if backend not in _BACKENDS:
        raise StoreError(f"no store backend {backend!r} (known: {', '.join(sorted(_BACKENDS))})")
    return _BACKENDS[backend], os.fspath(path)


def open_store(path: str | os.PathLike[str], *, readonly: bool = False, backend: str | None = None,
               sniff: bool = False) -> LayeredStore:
    """Open the disk at `path` with the backend the rule picks (or the one named)."""
    chosen, locator = _named(backend, path, sniff)
    return chosen.open(locator, readonly)


def create_store(path: str | os.PathLike[str], size: int | None = None, *,
                 parent: str | os.PathLike[str] | None = None, backend: str | None = None) -> None:
    """Make a new disk at `path`: empty of `size` bytes, or a layer over `parent`
    (which has the parent's size). Refuses to overwrite."""
    chosen, locator = _named(backend, path, False)
    if parent is not None:
        if chosen.create_over is None:
            raise FormatError(f"{locator}: a {chosen.name} disk cannot be a layer over {os.fspath(parent)}")
        chosen.create_over(locator, os.fspath(parent))
    elif size is None:
        raise FormatError(f"{locator}: a size is needed (or a parent to layer over)")
    else:
        chosen.create(locator, size)


def remove_store(path: str | os.PathLike[str]) -> None:
    """Delete the disk at `path` (a file, or an RBD image with its snapshots); absent is fine."""
    chosen, locator = _named(None, path, False)
    if chosen.remove is not None:
        chosen.remove(locator)
    else:
        Path(locator).unlink(missing_ok=True)


def rename_store(path: str | os.PathLike[str], new: str | os.PathLike[str]) -> None:
    """Give the disk at `path` the name `new`, in the same backend (and pool)."""
    chosen, locator = _named(None, path, False)
    other, new_locator = _named(None, new, False)
    if other is not chosen:
        raise StoreError(f"{os.fspath(path)} cannot be renamed to {os.fspath(new)}: another kind of disk")
    if chosen.rename is not None:
        chosen.rename(locator, new_locator)
    else:
        os.replace(locator, new_locator)


def _create_raw(locator: Locator, size: int) -> None:
    RawStore.create(locator, size).close()


def _create_vhd(locator: Locator, size: int) -> None:
    create_dynamic(locator, size)


def _create_vhd_over(locator: Locator, parent: Locator) -> None:
    create_differencing(locator, parent)


def _is_vhd(locator: Locator) -> bool:
    try:
        read_footer(locator)
        return True
    except (FormatError, OSError):
        return False


register(Backend("raw", lambda locator, readonly: RawStore(locator, readonly=readonly), _create_raw))
def _clone_rbd(locator: Locator, parent: Locator) -> None:
    scheme, sep, source = parent.partition(":")
    if not sep or scheme != "rbd":
        raise FormatError(f"rbd:{locator}: an RBD clone is made of an RBD snapshot (rbd:POOL/IMAGE@SNAP), "
                          f"not of {parent}")
    rbd_images.clone(source, locator)


register(Backend("rbd", lambda locator, readonly: RbdStore(locator, readonly=readonly), create_rbd, _clone_rbd,
                 scheme="rbd", remove=rbd_images.remove, rename=rbd_images.rename))
register(Backend("vhd", lambda locator, readonly: open_vhd(locator, readonly=readonly), _create_vhd, _create_vhd_over,
                 suffixes=(".vhd",), recognizes=_is_vhd))
