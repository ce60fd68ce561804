"""What the operations, the dashboard and the metrics may see and do of a running
appliance: a read-only view with a few named actions. It is the one place that knows
where the appliance keeps things (the iSCSI server, the lease store, the TFTP service),
so those can move without touching a single operation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootsrv.config import Config
from bootsrv.wake.clients import Sleeper
from target.iscsi.session import Session
from target.iscsi.stats import CommandStats
from target.stores.errors import FormatError
from target.stores.meter import NO_METER, Meter
from target.stores.vhd import read_footer

if TYPE_CHECKING:
    from bootsrv.backup import BackupService
    from bootsrv.imaging.manager import ImageManager
    from bootsrv.runtime.appliance import Appliance
    from bootsrv.runtime.tasks import TaskRegistry
    from bootsrv.web.history import History
    from snapshots.engine import SnapshotEngine
    from snapshots.schedule import SnapshotScheduler


STARTED = time.time()  # `status` uptime: the process's, as it was before there was a view


@dataclass(frozen=True)
class ApplianceView:
    app: "Appliance"

    @classmethod
    def of(cls, app: "Appliance") -> "ApplianceView":
        return cls(app)

    # ---- what is configured and served ------------------------------------------------------

    @property
    def config(self) -> Config:
        return self.app.config  # replaced whole by a reload: read it anew each time

    @property
    def backup(self) -> "BackupService":
        return self.app.backup

    @property
    def engine(self) -> "SnapshotEngine":
        return self.app.backup.engine

    @property
    def scheduler(self) -> "SnapshotScheduler | None":
        return self.app.backup.scheduler

    @property
    def tasks(self) -> "TaskRegistry":
        return self.app.tasks

    def process(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "uptime": time.time() - STARTED, "config": str(self.config.path)}

    def portals(self) -> list[str]:
        return [f"{host}:{port}" for host, port in self.app.bound]

    @property
    def image_manager(self) -> "ImageManager":
        return self.app.images

    def images(self) -> list[dict[str, Any]]:
        """Each image with its current version, its edit under way and the clients behind it."""
        clients = self.app.clients.values()
        rows = []
        for image in self.config.images:
            try:
                size = self.app.images.size_of(image.name) or read_footer(image.path).virtual_size
            except (FormatError, OSError):
                size = 0
            record = self.app.images.record(image.name)
            mine = sorted((c for c in clients if c.config.image == image.name), key=lambda c: c.name)
            rows.append({"name": image.name, "path": str(image.path), "size": size,
                         "clients": [c.name for c in mine], "current": record.current,
                         "versions": len(record.versions),
                         "edit": {"client": record.edit.client, "base": record.edit.base,
                                  "booted": record.edit.booted} if record.edit else None,
                         "behind": [c.name for c in mine if self.app.images.version_of(c) != record.current]})
        return rows

    def disks(self) -> list[dict[str, Any]]:
        engine, rows = self.engine, []
        for name, volume in sorted(engine.volumes.items()):
            count, held = engine.usage(name)
            rows.append({"name": name, "path": str(volume.path), "size": volume.gate.size,
                         "sessions": volume.sessions(), "snapshots": count, "snapshot_bytes": held})
        return rows

    def cluster(self) -> dict[str, Any]:
        """Several nodes on one Ceph cluster: this node's name, the cluster's health, and which
        node holds each RBD disk (network calls: a worker thread, never the event loop)."""
        return self.app.cluster_status()

    # ---- live state (read on the event loop) -----------------------------------------------

    def sessions(self) -> list[Session]:
        return self.app.sessions()

    def connection_count(self) -> int:
        return len(self.app.server.connections) if self.app.server else 0

    def command_stats(self) -> CommandStats | None:
        return self.app.server.stats if self.app.server else None

    def service_status(self) -> dict[str, str]:
        return self.app.service_status()

    def clients_summary(self) -> dict[str, int]:
        return self.app.clients_summary()

    def clients_overview(self) -> list[dict[str, Any]]:
        return self.app.clients_overview()

    def sleepers(self) -> dict[str, Sleeper]:
        """Every client served (configured and adopted) as Wake-on-LAN sees it: a copy, for workers."""
        return {name: Sleeper(name, c.config.mac, c.config.image) for name, c in list(self.app.clients.items())}

    def resets_at_boot(self, name: str) -> bool:
        """Whether the client's disk starts over when it powers on (a worker may ask: it reads image records)."""
        client = self.app.clients.get(name)
        return client is not None and self.app.images.resets_at_boot(client)

    def online(self) -> set[str]:
        """The clients logged in to their disk now (a worker may ask: the sessions are copied)."""
        targets = {s.target_name for s in self.sessions()}
        return {name for name, c in list(self.app.clients.items()) if c.target_iqn in targets}

    def lease_states(self) -> dict[str, int] | None:
        """DHCP leases by state (an expired one counts as expired), None without DHCP."""
        leases = self.app.leases
        if leases is None:
            return None
        now, counts = time.time(), {"bound": 0, "offered": 0, "declined": 0, "expired": 0}
        for lease in leases.all():
            state = "expired" if lease.expires < now else lease.state
            counts[state] = counts.get(state, 0) + 1
        return counts

    def tftp_transfers(self) -> int | None:
        return self.app.tftp_transfers() if self.app.tftp else None

    def target_stats(self) -> dict[str, CommandStats]:
        """The command counters per target logged in to (a client's disk is its target)."""
        return dict(self.app.server.target_stats) if self.app.server else {}

    def client_targets(self) -> dict[str, str]:
        return {name: client.target_iqn for name, client in self.app.clients.items()}

    def dhcp_requests(self) -> int | None:
        """DHCP datagrams received (ports 67 and 4011), None without DHCP."""
        services = [s for s in (self.app.dhcp, self.app.pxe) if s is not None]
        return sum(s.requests for s in services) if services else None

    def history(self) -> "History | None":
        """The dashboard's last hour of samples, kept while [web] listen is set."""
        return self.app.web.history if self.app.web is not None else None

    # ---- actions --------------------------------------------------------------------------

    def reload(self) -> dict[str, list[str]]:
        return self.app.reload()

    def extend_disk(self, path: str, size: int, progress: Meter = NO_METER) -> str:
        return self.app.extend_disk(path, size, progress)

    def forget_adopted(self, name: str, delete_disk: bool) -> str:
        return self.app.forget_adopted(name, delete_disk)
