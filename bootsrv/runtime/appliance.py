"""The composition root: configuration -> inventory (stores, targets, clients) -> a list of
services on one asyncio loop. No protocol logic lives here.

Services start in list order and stop in reverse, all through `Service`; the admin socket
starts first and the dashboard last, and both close before the services stop. A service
that dies is never silently gone: `serve` notices through `Service.died`, logs why and
exits non-zero. What DHCP asks for (power-on resets, adoption, RAs) and idle-disk parking
are in `boot`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootsrv import adopted, logring
from bootsrv.admin import AdminServer, socket_path
from bootsrv.backup import BackupService
from bootsrv.clients import BootClient, boot_clients, unknown_client
from bootsrv.config import Config, StartupError, load_config
from bootsrv.config.modes import DhcpMode
from bootsrv.dhcp.leases import LeaseStore
from bootsrv.dhcp.policy import DhcpPolicy, Effect
from bootsrv.dhcp.service import DhcpService, interface_ipv4
from bootsrv.disktool import allocated_bytes, grow
from bootsrv.dns import DnsAnswers, DnsService
from bootsrv.httpboot import BootHttp
from bootsrv.imaging.manager import ImageManager
from bootsrv.isns import registrar as isns_registrar
from bootsrv.runtime import boot, reload as reloading
from bootsrv.runtime.boot import PARK_AFTER
from bootsrv.runtime.disks import configure_ceph, image_path
from bootsrv.runtime.inventory import Inventory
from bootsrv.runtime.services import (DhcpPort, DnsPort, HttpPort, IscsiPortals, LeaseWriter, RouterAdvertisements,
                                      Service, TftpThread)
from bootsrv.runtime.tasks import TaskRegistry
from bootsrv.runtime.view import ApplianceView
from bootsrv.tftp import TftpService
from bootsrv.wake.schedule import WakeScheduler, wake_first
from bootsrv.web.server import WebServer
from target.iscsi.connection import IscsiServer, ServerSettings
from target.iscsi.params import TargetLimits
from target.iscsi.session import Session
from target.iscsi.targets import TargetDirectory
from target.scsi.lu import LogicalUnit
from target.stores import rbd
from target.stores.rbd import node as rbd_node
from target.stores.rbd.lock import Leadership
from target.stores.gate import GatedStore
from target.stores.meter import NO_METER, Meter

log = logging.getLogger("bootsrv")
TASKS_END_WITHIN = 30.0  # seconds a stop waits for running tasks to reach their next step and end


@dataclass
class Appliance:
    config: Config
    directory: TargetDirectory = field(default_factory=TargetDirectory)
    server: IscsiServer | None = None
    bound: list[tuple[str, int]] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)  # started, in start order
    dhcp: DhcpService | None = None
    pxe: DhcpService | None = None  # proxy mode's port 4011
    ra: RouterAdvertisements | None = None
    tftp: TftpService | None = None
    dns: DnsService | None = None
    http: BootHttp | None = None
    tasks: TaskRegistry = field(default_factory=TaskRegistry)  # long operations (task.list, the dashboard)
    backup: BackupService = field(init=False)
    inventory: Inventory = field(init=False)
    images: ImageManager = field(init=False)
    admin: AdminServer | None = None
    web: WebServer | None = None
    leases: LeaseStore | None = None
    policy: DhcpPolicy | None = None
    last_boot: dict[str, float] = field(default_factory=dict)  # client name -> when it last PXE-booted
    boot_attempts: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (xid, logins then)
    leadership: Leadership | None = None  # of the RBD disks' scheduled snapshots, among the nodes
    wakeups: WakeScheduler | None = None  # the [[wake.schedule]] jobs

    def __post_init__(self) -> None:
        self.backup = BackupService(self.config, self.directory, lambda: self.server.registry if self.server else None)
        self.inventory = Inventory(self.config, self.directory, self.backup, self._drop_sessions)
        self.images = ImageManager(self.inventory, self.backup.engine)
        self.inventory.base_of = self.images.base_for
        self.backup.wake_first = wake_first(ApplianceView.of(self))  # snapshot schedules with `wake = true`

    # Short names for what the inventory owns.
    @property
    def stores(self) -> dict[str, GatedStore]:
        return self.inventory.stores

    @property
    def clients(self) -> dict[str, BootClient]:
        return self.inventory.clients

    @property
    def client_units(self) -> dict[str, LogicalUnit]:
        return self.inventory.units

    def open_disks(self) -> None:
        inventory = self.inventory
        inventory.config.server.state_dir.mkdir(parents=True, exist_ok=True)
        configure_ceph(self.config)
        rbd_node.set_node(rbd_node.Node(self.config.node.name or socket.gethostname(),
                                        tuple(str(p) for p in self.config.iscsi.portals)))
        pools = [rbd.split(str(d.path)[4:])[0] for d in (*self.config.disks, *self.config.images)
                 if str(d.path).startswith("rbd:")]
        if pools:  # the nodes sharing these disks elect one to take their scheduled snapshots
            self.leadership = Leadership(pools[0])
            self.backup.leader = self.leadership.runs
        self.images.recover()
        for disk in self.config.disks:
            inventory.add_disk(disk)
        for client in boot_clients(self.config):
            inventory.add_client(client)
            inventory.park(client)  # most of a lab is switched off: its files stay closed until a login
        for record in adopted.load(self.config.server.state_dir):
            client = unknown_client(self.config, record.mac, record.image)
            if client is None:
                log.warning("adopted client %s: image %r is not configured any more: not served (client remove "
                            "%s forgets it)", record.name, record.image, record.name)
            elif record.mac not in inventory.by_mac:
                inventory.add_client(client)
                inventory.park(client)
        for target in self.config.targets:
            inventory.add_target(target)
        self.images.serve_booted_edits()
        self.images.learn_rbd_clients()

    def _drop_sessions(self, target_iqn: str) -> None:
        if self.server is not None:
            self.server.registry.drop_target(target_iqn)

    # ---- starting and stopping -------------------------------------------------------------

    async def start(self) -> None:
        view = ApplianceView.of(self)  # what the operations, the dashboard and the metrics see
        logring.install()  # the last log lines, for log.tail and the dashboard's log view
        self.admin = AdminServer(view, socket_path(self.config.server.state_dir))
        try:
            await self.admin.start()
        except OSError as exc:
            self.admin = None
            raise StartupError(f"{self.config.path}: server.state_dir: admin socket: {exc.strerror or exc}") from None
        self.backup.loop = asyncio.get_running_loop()
        self.backup.start()
        self.wakeups = WakeScheduler(view)
        await self._start(self.wakeups)
        iscsi = self.config.iscsi
        # librbd waits on the network with the GIL released: more workers overlap more I/O.
        remote = any(str(d.path).startswith("rbd:") for d in (*self.config.disks, *self.config.images))
        settings = ServerSettings(limits=TargetLimits(digests=iscsi.digests), **({"worker_threads": 32} if remote else {}),
                                  queue_depth=iscsi.queue_depth, max_sessions=iscsi.max_sessions,
                                  nop_interval=iscsi.nop_interval, nop_timeout=iscsi.nop_timeout,
                                  login_timeout=iscsi.login_timeout)
        self.server = IscsiServer(self.directory, settings)
        portals = IscsiPortals(self.server, [(p.host, p.port) for p in iscsi.portals], self.config.path)
        await self._start(portals)
        self.bound = portals.bound
        me = rbd_node.node()  # other nodes send initiators to the portals bound (port 0 picks one)
        rbd_node.set_node(rbd_node.Node(me.name, tuple(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.bound)))
        if iscsi.isns is not None:  # after the portals (it registers those bound), stopped before them
            await self._start(isns_registrar(iscsi.isns, me.name, lambda: self.bound, self.directory))
        if self.config.dhcp.mode != DhcpMode.OFF:
            for service in self._boot_services():
                await self._start(service)
        if self.config.web.listen is not None:
            web = self.config.web
            self.web = WebServer(view, web.token)
            try:
                port = await self.web.start(web.listen.host, web.listen.port)
            except OSError as exc:
                raise StartupError(f"{self.config.path}: web.listen: cannot listen: {exc.strerror or exc}") from None
            log.info("dashboard on http://%s:%d/ (metrics at /metrics)", web.listen.host, port)
        for target in self.config.targets:
            for lun, name in enumerate(target.luns):
                store = self.stores[name]
                host, port = self.bound[0]
                shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
                log.info("target %s LUN %d = disk %r (%.1f GiB%s): iscsi://%s:%d/%s/%d", target.iqn, lun, name,
                         store.size / (1 << 30), ", read-only" if self.config.disk(name).readonly else "",
                         shown, port, target.iqn, lun)

    async def _start(self, service: Service) -> None:
        self.services.append(service)  # stopped even if its start fails half-way
        await service.start()

    def _boot_services(self) -> list[Service]:
        """DHCP (+ proxy port 4011), RAs, TFTP and DNS, built (not started) in start order."""
        dhcp, path = self.config.dhcp, self.config.path
        try:
            address, mask = interface_ipv4(dhcp.interface)
        except OSError as exc:
            raise StartupError(f"{path}: dhcp.interface: {exc}") from None
        server_ip = dhcp.server_ip or address
        if not any(host in (server_ip, "0.0.0.0", "") for host, _ in self.bound):
            log.warning("no iSCSI portal listens on %s, the address clients are told to boot from "
                        "(add \"%s:3260\" or \"0.0.0.0:3260\" to iscsi.portals)", server_ip, server_ip)
        clients = boot_clients(self.config)
        leases = self.leases = LeaseStore(self.config.server.state_dir / "leases.sqlite", dhcp.pool,
                                          {c.config.mac: c.config.ip for c in clients if c.config.ip})
        port = self.bound[0][1] if self.bound else 3260
        policy = self.policy = DhcpPolicy(dhcp, server_ip, mask, leases, self.inventory.by_mac, iscsi_port=port,
                                          http_port=self.config.http.port)
        policy.adoptions.adopted = sum(1 for c in self.clients.values() if c.origin == "adopted")
        policy.scripted = lambda name: self.images.installing(name) is not None
        self.dhcp = DhcpService(policy, dhcp.interface, carry_out=self.carry_out)
        services: list[Service] = [LeaseWriter(leases), DhcpPort(self.dhcp, path)]
        if dhcp.mode == DhcpMode.PROXY:
            self.pxe = DhcpService(policy, dhcp.interface, port=4011, carry_out=self.carry_out)
            services.append(DhcpPort(self.pxe, path))
        # in proxy mode the site's routers own IPv6: no answers to solicitations
        self.ra = RouterAdvertisements(dhcp.interface, answer_solicitations=dhcp.mode == DhcpMode.FULL)
        services.append(self.ra)

        http_port = self.config.http.port

        def script(name: str) -> bytes | None:  # clients added by a reload get theirs too
            client = next((c for c in self.clients.values() if c.script_name == name), None)
            if client is None:
                return None
            if self.images.installing(client.name) is not None:
                return self.images.install_script(client, server_ip, port, http_port)
            return client.ipxe_script(server_ip, port)

        self.tftp = TftpService(self.config.tftp_root, server_ip, generated=script)
        services.append(TftpThread(self.tftp, path))
        self.http = BootHttp(self.images.install_iso, self.tftp.roots)  # + UEFI HTTP boot's iPXE
        services.append(HttpPort(self.http, server_ip, http_port, path))
        if self.config.dns.enabled:
            names = {c.name: c.config.ip for c in clients if c.config.ip}

            def table() -> dict[str, str]:
                current = dict(names)
                for lease in leases.all():
                    if lease.hostname and lease.state == "bound":
                        current.setdefault(lease.hostname, lease.ip)
                return current

            self.dns = DnsService(DnsAnswers(dhcp.domain, table), self.config.dns.upstream)
            services.append(DnsPort(self.dns, server_ip, self.config.dns.port, path))
        return services

    def died(self) -> str | None:
        """Why a service stopped serving on its own, if one did."""
        # A node the Ceph cluster fenced can write no RBD disk until it restarts with a new client.
        return next((why for why in (s.died() for s in self.services) if why), None) or rbd_node.fenced() or None

    async def stop(self) -> None:
        if self.web is not None:
            self.web.close()
        if self.admin is not None:
            self.admin.close()
        self.tasks.stop()
        await self.tasks.ended(timeout=TASKS_END_WITHIN)
        await asyncio.get_running_loop().run_in_executor(None, self.backup.stop)
        if self.leadership is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.leadership.resign)
        for service in reversed(self.services):
            await service.stop()
        self.images.close()
        self.inventory.close()
        self.backup.close()
        rbd.disconnect()

    # ---- what DHCP asks for (bootsrv.runtime.boot) -------------------------------------------

    async def park_idle_disks(self, idle: float = PARK_AFTER, every: float = 15.0) -> None:
        await boot.park_idle_disks(self, idle, every)

    async def carry_out(self, effects: list[Effect]) -> None:
        await boot.carry_out(self, effects)

    # ---- what the operations read and do (through view.py) ----------------------------------

    def forget_adopted(self, name: str, delete_disk: bool = False) -> str:
        """`client remove` of an adopted client: sessions dropped, target gone, its record
        removed; its disk file stays unless asked (then its snapshots' files too)."""
        client = self.clients.get(name)
        if client is not None and client.origin != "adopted":
            raise ValueError(f"{name} is a [[client]] of {self.config.path}, not an adopted one")
        record = adopted.remove(self.config.server.state_dir, name)
        if client is None and record is None:
            raise ValueError(f"no adopted client {name!r}")
        if client is not None:
            self.inventory.remove_client(name)
            if self.policy is not None and self.policy.adoptions is not None:
                self.policy.adoptions.forgotten()
        image = image_path(self.config, (record or client.config).image)  # type: ignore[union-attr]
        return adopted.dispose_disk(self.config.server.state_dir, name, delete_disk, image)

    def extend_disk(self, path: str, size: int, progress: Meter = NO_METER) -> str:
        """`disk extend`: a [[disk]] this server serves grows online (from a worker thread),
        and every session on it is told at once (CAPACITY DATA HAS CHANGED, as the periodic
        check would tell it later); any other file is grown as the CLI alone would."""
        wanted = Path(path).resolve()
        disk = next((d for d in self.config.disks if d.path.resolve() == wanted), None)
        client = next((c for c in self.clients.values() if c.disk_path.resolve() == wanted), None)
        grow_shown = functools.partial(grow, progress=progress)
        if disk is not None:
            self.inventory.extend_disk(disk.name, size, grow_shown)
            name = f"disk {disk.name}"
        elif client is not None:
            self.inventory.extend_client(client.name, size, grow_shown)
            name = f"client {client.name}'s disk"
        else:
            return grow(path, size, progress)
        self.backup.on_loop(self.directory.check_capacity, timeout=60)
        log.info("%s extended online to %d bytes", name, size)
        return f"{wanted} is now {size} bytes (served: sessions told)"

    def reload(self) -> dict[str, list[str]]:
        """Re-read the configuration file and apply what can change while serving
        (bootsrv.runtime.reload). Runs on the event loop (sessions and DHCP state live there)."""
        old, new = self.config, load_config(self.config.path)
        changes = reloading.plan(old, new)
        try:
            applied = reloading.apply(changes, old, new, self.inventory)
        finally:  # apply switches the inventory to `new` once the removals are done: a later
            self.config = self.inventory.config  # reload then plans from what is really served
        if self.wakeups is not None and self.wakeups.changed():
            self.wakeups.restart()
            applied.append("wake schedules")
        restart = changes.restart
        log.info("configuration reloaded: %s%s", "; ".join(applied) or "nothing to apply",
                 f" (restart needed for: {', '.join(restart)})" if restart else "")
        return {"applied": applied, "restart_needed": restart}

    def sessions(self) -> list[Session]:
        """The iSCSI sessions now (discovery ones included), a copy."""
        return list(self.server.registry.sessions.values()) if self.server else []

    def service_status(self) -> dict[str, str]:
        """What `status` says of each boot service."""
        tftp = self.tftp
        return {"dhcp": self.config.dhcp.mode if self.dhcp else "off",
                "tftp": ("running" if tftp.alive else f"failed: {tftp.failed}") if tftp else "off",
                "dns": "running" if self.dns else "off",
                "http": f"port {self.http.port}, {self.http.served} request(s)" if self.http else "off"}

    def cluster_status(self) -> dict[str, Any]:
        """`status` of several nodes: this node, the Ceph cluster's health, and per RBD disk (a
        [[disk]] or a client's) the node that holds its exclusive lock (the one serving it)."""
        me = rbd_node.node()
        served = [(d.name, str(d.path), self.stores[d.name]) for d in self.config.disks]
        served += [(c.name, str(c.disk_path), self.stores[c.store_key]) for c in self.clients.values()]
        disks = []
        for name, path, gate in served:
            if not path.startswith("rbd:"):
                continue
            owner_of = getattr(gate.unparked(), "lock_owner", None)
            owner = owner_of() if owner_of is not None else None
            disks.append({"name": name, "path": path, "node": owner.node if owner else None,
                          "address": owner.address if owner else None,
                          "here": owner is not None and owner.address == rbd_node.my_address()})
        if not disks:
            return {"node": me.name, "health": None, "fenced": "", "disks": []}
        return {"node": me.name, "health": rbd_node.cluster_health(), "fenced": rbd_node.fenced(), "disks": disks}

    def tftp_transfers(self) -> int:
        return self.tftp.transfers if self.tftp else 0

    def _version_columns(self, client: BootClient, current: int | None) -> dict[str, Any]:
        """Which image version a client boots, and whether it is behind the current one."""
        editing = self.images.editing(client.name)
        version = self.images.version_of(client)
        return {"version": version, "current": current, "behind": version != current,
                "editing": editing.name if editing is not None else None}

    def clients_summary(self) -> dict[str, int]:
        """Counts for `status`: clients in all, adopted ones, and disks not parked."""
        clients = self.clients.values()
        return {"total": len(clients), "adopted": sum(1 for c in clients if c.origin == "adopted"),
                "disks_open": sum(1 for c in clients if not self.stores[c.store_key].parked)}

    def clients_overview(self) -> list[dict[str, Any]]:
        """What the dashboard shows of each client (runs on the event loop)."""
        online = {s.target_name for s in self.sessions()}
        rows = []
        current = {image.name: self.images.record(image.name).current for image in self.config.images}
        for name, client in sorted(self.clients.items()):
            lease = self.leases.lookup(client.config.mac) if self.leases else None
            try:
                used = allocated_bytes(client.disk_path)
            except OSError:
                used = 0
            rows.append({"name": name, "mac": client.config.mac, "ip": client.config.ip or (lease.ip if lease else ""),
                         "online": client.target_iqn in online, "last_boot": self.last_boot.get(name),
                         "image": client.config.image, "disk": str(client.disk_path), "disk_bytes": used,
                         "target": client.target_iqn, "origin": client.origin,
                         **self._version_columns(client, current.get(client.config.image))})
        return rows
