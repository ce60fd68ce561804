"""Opening (and on first use creating) the disk files the configuration names. Failures
become StartupErrors naming the configuration file and the disk or client."""

from __future__ import annotations

import logging
from pathlib import Path

from bootsrv.clients import BootClient
from bootsrv.config import Config, DiskConfig, StartupError
from target.stores.base import BlockStore, StoreError
from target.stores import rbd
from target.stores.rbd import images as rbd_images
from target.stores.registry import backend_for, create_store, open_store
from target.stores.vhd import open_vhd

log = logging.getLogger("bootsrv")


def configure_ceph(config: Config) -> None:
    """The cluster `rbd:` disks and images are in: the [ceph] section's (before any is opened)."""
    ceph = config.ceph
    rbd.configure(rbd.CephSettings(str(ceph.conf), ceph.id, str(ceph.keyring) if ceph.keyring else ""))


def image_path(config: Config, image: str) -> Path | None:
    """The configured [[image]]'s path (None: no such image any more)."""
    return next((i.path for i in config.images if i.name == image), None)


def open_disk(config: Config, disk: DiskConfig) -> BlockStore:
    where = f"{config.path}: disk {disk.name!r}"
    backend, _ = backend_for(disk.path)
    if backend.scheme is not None:  # a remote image (rbd:): no file to look for
        return _open_remote(where, disk)
    try:
        if not disk.path.exists():
            if disk.size is None:
                raise StartupError(f"{where}: {disk.path} does not exist (add size = \"1GiB\" to create it)")
            disk.path.parent.mkdir(parents=True, exist_ok=True)
            backend, _ = backend_for(disk.path)
            log.info("creating %s (%d bytes, %s)", disk.path, disk.size,
                     "dynamic VHD" if backend.name == "vhd" else f"sparse {backend.name}")
            create_store(disk.path, disk.size)
        return open_store(disk.path, readonly=disk.readonly)
    except StoreError as exc:
        raise StartupError(f"{where}: {exc}") from None


def _open_remote(where: str, disk: DiskConfig) -> BlockStore:
    try:
        return open_store(disk.path, readonly=disk.readonly)
    except StoreError as exc:
        if disk.size is None or "no image" not in str(exc):
            raise StartupError(f"{where}: {exc}") from None
    log.info("creating %s (%d bytes)", disk.path, disk.size)
    try:
        create_store(disk.path, disk.size)
        return open_store(disk.path, readonly=disk.readonly)
    except StoreError as exc:
        raise StartupError(f"{where}: {exc}") from None


def open_client_disk(config: Config, client: BootClient, base: Path | None = None) -> BlockStore:
    """The client's differencing disk over `base` (its image's current version), made on first use;
    on RBD, a clone of the version's snapshot."""
    where = f"{config.path}: client {client.name!r}"
    base = base or client.image_path
    if str(client.disk_path).startswith("rbd:"):
        return _open_client_clone(where, client, base)
    try:
        if not client.disk_path.exists():
            if not base.exists():
                raise StartupError(f"{where}: image {base} does not exist "
                                   "(bootsrv disk create it, or convert an installed disk to VHD)")
            client.disk_path.parent.mkdir(parents=True, exist_ok=True)
            log.info("creating %s over %s", client.disk_path, base)
            create_store(client.disk_path, parent=base)
        return open_vhd(client.disk_path)
    except StoreError as exc:
        raise StartupError(f"{where}: {exc}") from None


def _open_client_clone(where: str, client: BootClient, base: Path) -> BlockStore:
    try:
        if not rbd_images.exists(str(client.disk_path).removeprefix("rbd:")):
            log.info("creating %s as a clone of %s", client.disk_path, base)
            create_store(client.disk_path, parent=base)
        return open_store(client.disk_path)
    except StoreError as exc:
        raise StartupError(f"{where}: {exc}") from None
