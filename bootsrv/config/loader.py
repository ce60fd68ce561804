"""The entry points: `load_config(path)` reads a file, `parse_config(raw, file)` a parsed TOML dict.

Relative paths are relative to the configuration file's folder. The sections are
read in a fixed order, with the cross-checks placed between them where they can
first run; that order decides which error a file with several mistakes reports,
and tests pin those messages.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bootsrv.config import crosschecks
from bootsrv.config.errors import ConfigError
from bootsrv.config.model import Config
from bootsrv.config.reader import Section
from bootsrv.config.sections import (ceph, clients, dhcp, disks, dns, http, images, iscsi, node, server,
                                     snapshots, targets, tftp, web)
from bootsrv.config.sections import wake


def load_config(path: str | Path) -> Config:
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return parse_config(raw, file)


def parse_config(raw: dict[str, Any], file: Path) -> Config:
    base = file.resolve().parent
    top = Section(file, "", raw)
    server_config = server.parse(top, base)
    iscsi_config = iscsi.parse(top)
    disk_configs = disks.parse(top, base)
    disk_index = {d.name: d for d in disk_configs}
    target_configs = targets.parse(top, disk_index)
    dhcp_config = dhcp.parse(top)
    dns_config = dns.parse(top)
    tftp_root = tftp.parse(top, base)
    http_config = http.parse(top)
    ceph_config = ceph.parse(top, base)
    node_config = node.parse(top)
    image_configs = images.parse(top, base)
    image_names = {i.name for i in image_configs}
    crosschecks.unknown_clients_policy(file, dhcp_config, image_names)
    client_configs = clients.parse(top, image_names)
    crosschecks.client_targets_are_free(file, iscsi_config.base_iqn, client_configs, target_configs)
    crosschecks.client_and_disk_names_differ(file, client_configs, disk_configs)
    snapshot_names = set(disk_index) | {c.name for c in client_configs}
    snapshots_config = snapshots.parse(top, base, snapshot_names)
    web_config = web.parse(top)
    wake_config = wake.parse(top, image_names, {c.name for c in client_configs})
    top.done()
    return Config(path=file, server=server_config, iscsi=iscsi_config, disks=disk_configs, targets=target_configs,
                  dhcp=dhcp_config, dns=dns_config, tftp_root=tftp_root, http=http_config, ceph=ceph_config,
                  node=node_config, images=image_configs,
                  clients=client_configs, snapshots=snapshots_config, web=web_config,
                  wake=wake_config, _disk_index=disk_index)
