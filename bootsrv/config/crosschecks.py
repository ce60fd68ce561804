"""Checks that relate one part of the file to another, run once those parts are read.

Each raises `ConfigError` naming the file and the entry at fault. The loader calls
them at the point the original single-pass parser made them, so a file with several
mistakes still reports the same first one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection

from bootsrv.config.errors import ConfigError
from bootsrv.config.model import ClientConfig, DhcpConfig, DiskConfig, TargetConfig
from bootsrv.config.modes import UnknownClients, listed
from bootsrv.config.names import client_target_iqn


def unknown_clients_policy(file: Path, dhcp: DhcpConfig, images: Collection[str]) -> None:
    """`dhcp.unknown_clients` is "ignore", "lease" or the name of an [[image]]."""
    if not UnknownClients.is_word(dhcp.unknown_clients) and dhcp.unknown_clients not in images:
        raise ConfigError(f"{file}: dhcp.unknown_clients: expected {listed(UnknownClients)} or an [[image]] name, "
                          f"got {dhcp.unknown_clients!r}")


def client_targets_are_free(file: Path, base_iqn: str, clients: tuple[ClientConfig, ...],
                            targets: tuple[TargetConfig, ...]) -> None:
    """No client's own target IQN is also a [[target]]'s."""
    taken = {t.iqn for t in targets}
    for client in clients:
        iqn = client_target_iqn(base_iqn, client.name)
        if iqn in taken:
            raise ConfigError(f"{file}: client {client.name!r}: its target {iqn} is also a "
                              "[[target]] iqn; rename one of them")


def client_and_disk_names_differ(file: Path, clients: tuple[ClientConfig, ...],
                                 disks: tuple[DiskConfig, ...]) -> None:
    """Snapshot commands take a disk or a client name, so one name cannot mean both."""
    names = {d.name for d in disks}
    for client in clients:
        if client.name in names:
            raise ConfigError(f"{file}: client {client.name!r}: a [[disk]] has that name too; snapshot commands "
                              "name disks and clients alike, so rename one of them")
