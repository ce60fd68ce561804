"""Moved to bootsrv.runtime (appliance, inventory, services, reload, naming, serve); these
names stay importable from here until admin, web and cli import them from there."""

from bootsrv.config import StartupError
from bootsrv.runtime.appliance import PARK_AFTER, Appliance
from bootsrv.runtime.disks import open_client_disk as _open_client_disk, open_disk as _open_disk
from bootsrv.runtime.serve import serve

__all__ = ["PARK_AFTER", "Appliance", "StartupError", "serve", "_open_client_disk", "_open_disk"]
