"""Opening (and on first use creating) the disk files the configuration names. Failures
become StartupErrors naming the configuration file and the disk or client."""

from __future__ import annotations

import logging

from bootsrv.clients import BootClient
from bootsrv.config import Config, DiskConfig, StartupError
from target.stores.base import BlockStore, StoreError
from target.stores.raw import RawStore
from target.stores.vhd import VhdFormatError, open_vhd
from target.stores.vhd.create import create_differencing, create_dynamic

log = logging.getLogger("bootsrv")


def open_disk(config: Config, disk: DiskConfig) -> BlockStore:
    where = f"{config.path}: disk {disk.name!r}"
    vhd = disk.path.suffix.lower() == ".vhd"
    try:
        if not disk.path.exists():
            if disk.size is None:
                raise StartupError(f"{where}: {disk.path} does not exist (add size = \"1GiB\" to create it)")
            disk.path.parent.mkdir(parents=True, exist_ok=True)
            log.info("creating %s (%d bytes, %s)", disk.path, disk.size, "dynamic VHD" if vhd else "sparse raw")
            if vhd:
                create_dynamic(disk.path, disk.size)
            else:
                RawStore.create(disk.path, disk.size)
        if vhd:
            return open_vhd(disk.path, readonly=disk.readonly)
        return RawStore(disk.path, readonly=disk.readonly)
    except (StoreError, VhdFormatError) as exc:
        raise StartupError(f"{where}: {exc}") from None


def open_client_disk(config: Config, client: BootClient) -> BlockStore:
    """The client's differencing disk over its image, made on first use."""
    where = f"{config.path}: client {client.name!r}"
    try:
        if not client.disk_path.exists():
            if not client.image_path.exists():
                raise StartupError(f"{where}: image {client.image_path} does not exist "
                                   "(bootsrv disk create it, or convert an installed disk to VHD)")
            client.disk_path.parent.mkdir(parents=True, exist_ok=True)
            log.info("creating %s over %s", client.disk_path, client.image_path)
            create_differencing(client.disk_path, client.image_path)
        return open_vhd(client.disk_path)
    except (StoreError, VhdFormatError) as exc:
        raise StartupError(f"{where}: {exc}") from None
