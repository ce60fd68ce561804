"""Wiring: configuration objects -> stores, SCSI devices, iSCSI targets -> a
running server on one asyncio loop. No protocol logic lives here."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import time
from dataclasses import dataclass, field

from bootsrv import adopted
from bootsrv.admin import AdminServer, other_instance
from bootsrv.backup import Access, BackupService
from bootsrv.clients import BootClient, boot_clients, unknown_client
from bootsrv.config import Config, DiskConfig, StartupError, TargetConfig, load_config
from bootsrv.dhcp.leases import LeaseStore
from bootsrv.disktool import allocated_bytes
from bootsrv.dhcp.policy import Adopt, DhcpPolicy, Effect, EndIpv6Wait, PoweringOn
from bootsrv.dhcp.service import DhcpService, interface_ipv4
from bootsrv.dns import DnsAnswers, DnsService
from bootsrv.ra import RouterAdvertiser
from bootsrv.tftp import TftpService
from bootsrv.web.server import WebServer
from target.iscsi.chap import Credentials
from target.iscsi.connection import IscsiServer, ServerSettings
from target.iscsi.params import TargetLimits
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.scsi.reservations import Reservations
from target.stores.base import BlockStore, StoreError
from target.stores.gate import GatedStore
from target.stores.raw import RawStore
from target.stores.vhd import VhdFormatError, open_vhd
from target.stores.vhd.create import create_differencing, create_dynamic

log = logging.getLogger("bootsrv")
PARK_AFTER = 60.0  # seconds after a client's last logout before its disk files are closed


@dataclass(slots=True)
class Appliance:
    config: Config
    directory: TargetDirectory = field(default_factory=TargetDirectory)
    stores: dict[str, GatedStore] = field(default_factory=dict)
    server: IscsiServer | None = None
    bound: list[tuple[str, int]] = field(default_factory=list)
    dhcp: DhcpService | None = None
    pxe: DhcpService | None = None  # proxy mode's port 4011
    ra: RouterAdvertiser | None = None
    tftp: TftpService | None = None
    dns: DnsService | None = None
    client_units: dict[str, LogicalUnit] = field(default_factory=dict)
    backup: BackupService = field(init=False)
    admin: AdminServer | None = None
    web: WebServer | None = None
    leases: LeaseStore | None = None
    policy: DhcpPolicy | None = None
    clients: dict[str, BootClient] = field(default_factory=dict)  # configured and adopted
    last_boot: dict[str, float] = field(default_factory=dict)  # client name -> when it last PXE-booted
    boot_attempts: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (xid, logins then)

    def __post_init__(self) -> None:
        self.backup = BackupService(self.config, self.directory, lambda: self.server.registry if self.server else None)

    def open_disks(self) -> None:
        os.makedirs(self.config.server.state_dir, exist_ok=True)
        for disk in self.config.disks:
            self._add_disk(disk)
        for client in boot_clients(self.config):
            self._add_client(client)
            self._park(client)  # most of a lab is switched off: its files stay closed until a login
        for record in adopted.load(self.config.server.state_dir):
            client = unknown_client(self.config, record.mac, record.image)
            if client is None:
                log.warning("adopted client %s: image %r is not configured any more: not served (client remove "
                            "%s forgets it)", record.name, record.image, record.name)
            elif not any(c.config.mac == record.mac for c in self.clients.values()):
                self._add_client(client)
                self._park(client)
        for target in self.config.targets:
            self._add_target(target)

    def _add_disk(self, disk: DiskConfig) -> None:
        self.stores[disk.name] = GatedStore(_open_disk(self.config, disk))
        self._disk_access(disk.name)

    def _disk_access(self, name: str) -> None:
        """Who may attach the disk's mounted snapshots follows the targets serving it."""
        serving = [t for t in self.config.targets if name in t.luns]
        anyone = any(not t.initiators for t in serving)
        chap = next((t.chap for t in serving if t.chap), None)
        self.backup.add_disk(name, self.config.disk(name).path, self.stores[name], Access(
            tuple(t.iqn for t in serving),
            None if anyone else frozenset(i for t in serving for i in t.initiators),
            Credentials(chap.user, chap.secret) if chap else None))

    def _add_target(self, target: TargetConfig) -> None:
        units = [self._unit(target.iqn, name) for name in target.luns]
        self.directory.add(TargetSpec(
            name=target.iqn, device=ScsiDevice(units), alias=target.alias,
            initiators=frozenset(target.initiators),
            chap=Credentials(target.chap.user, target.chap.secret) if target.chap else None,
            mutual_chap=(Credentials(target.mutual_chap.user, target.mutual_chap.secret)
                         if target.mutual_chap else None)))

    def _add_client(self, client: BootClient, store: BlockStore | None = None) -> None:
        self.clients[client.name] = client
        gate = self.stores[f"client:{client.name}"] = GatedStore(store or _open_client_disk(self.config, client))
        chap = Credentials(client.config.chap.user, client.config.chap.secret) if client.config.chap else None
        self.directory.add(TargetSpec(
            name=client.target_iqn,
            device=ScsiDevice([self._client_unit(client)]),
            alias=f"{client.name} boot disk",
            initiators=frozenset({client.initiator_iqn}),
            chap=chap))
        self.backup.add_disk(client.name, client.disk_path, gate,
                             Access((client.target_iqn,), frozenset({client.initiator_iqn}), chap))

    def _park(self, client: BootClient) -> bool:
        """Close a client's disk files (flushed first); its next I/O opens them again.
        Never in the middle of a snapshot operation on the disk (a merge works on its layers)."""
        gate = self.stores.get(f"client:{client.name}")
        if gate is None:
            return False
        busy = self.backup.engine.lock(client.name)
        if not busy.acquire(blocking=False):
            return False
        try:
            return gate.park(lambda: open_vhd(client.disk_path))
        finally:
            busy.release()

    async def park_idle_disks(self, idle: float = PARK_AFTER, every: float = 15.0) -> None:
        """Clients logged out for `idle` seconds get their files closed (a lab of thousands
        would otherwise hold two descriptors a client: its disk and its image)."""
        loop = asyncio.get_running_loop()
        since: dict[str, float] = {}
        while True:
            await asyncio.sleep(every)
            if self.server is None:
                continue
            online = {s.target_name for s in self.server.registry.sessions.values()}
            now = time.monotonic()
            for name, client in list(self.clients.items()):
                gate = self.stores.get(f"client:{name}")
                if gate is None or gate.parked or client.target_iqn in online or gate.held:
                    since.pop(name, None)
                    continue
                if now - since.setdefault(name, now) >= idle:
                    since.pop(name, None)
                    try:
                        await loop.run_in_executor(None, self._park, client)
                    except StoreError as exc:
                        log.error("closing the idle disk of %s: %s", name, exc)

    async def carry_out(self, effects: list[Effect]) -> None:
        """What the DHCP policy asked for, off the event loop where it touches files."""
        loop = asyncio.get_running_loop()
        for effect in effects:
            if isinstance(effect, PoweringOn):
                await self._powering_on(effect, loop)
            elif isinstance(effect, Adopt):
                await self._adopt(effect, loop)
            elif isinstance(effect, EndIpv6Wait) and self.ra is not None:
                self.ra.advertise(effect.mac if effect.only_to_it else None)

    async def _adopt(self, effect: Adopt, loop: asyncio.AbstractEventLoop) -> None:
        """unknown_clients = an image: a new PXE client gets its own disk and target."""
        client = unknown_client(self.config, effect.mac)
        ok = False
        try:
            if client is None or self.policy is None:
                return
            try:
                store = await loop.run_in_executor(None, _open_client_disk, self.config, client)
            except StartupError as exc:
                log.error("cannot make a disk for unknown client %s: %s", effect.mac, exc)
                return
            try:
                await loop.run_in_executor(None, adopted.add, self.config.server.state_dir, client.name,
                                           client.config.mac, client.config.image, effect.cause)
            except OSError as exc:  # not recorded: not served either (it would be lost at a restart)
                store.close()
                log.error("cannot record unknown client %s as adopted: %s", effect.mac, exc)
                return
            self._add_client(client, store)
            self.policy.clients[client.config.mac] = client
            ok = True
            log.info("unknown PXE client %s adopted as %s (image %s), on %s", effect.mac, client.name,
                     client.config.image, effect.cause)
        finally:
            if self.policy is not None and self.policy.adoptions is not None:
                self.policy.adoptions.done(effect.mac, ok)

    async def _powering_on(self, effect: PoweringOn, loop: asyncio.AbstractEventLoop) -> None:
        """A client is in its boot firmware: its sessions are stale; reset_on_boot starts it again
        from its image. Never for an OS's own DHCP traffic (the policy sends no such effect)."""
        client = effect.client
        # The same DISCOVER again (same xid, no login to the disk since) is the firmware
        # repeating itself while it waits for offers: one power-on, one reset. Some firmware
        # uses the same xid at every boot, hence the logins.
        logins = self.server.registry.logins[client.target_iqn] if self.server is not None else 0
        if self.boot_attempts.get(client.name) == (effect.xid, logins):
            log.debug("%s: DISCOVER xid %#x again, the same power-on", client.name, effect.xid)
            return
        self.boot_attempts[client.name] = (effect.xid, logins)
        self.last_boot[client.name] = time.time()
        if not client.config.reset_on_boot:
            log.info("%s powering on (%s)", client.name, effect.cause)
            return
        if client.name not in self.client_units or self.server is None:
            return
        self.server.registry.drop_target(client.target_iqn)
        # On a worker: the reset swaps files under the gate; it gives up rather than wait
        # for a snapshot operation on this disk.
        if not await loop.run_in_executor(None, self.backup.engine.restart_from, client.name, client.image_path):
            log.warning("%s powering on during a snapshot operation on its disk: not reset this time (%s)",
                        client.name, effect.cause)
            return
        log.info("%s booted: its disk starts again from %s (reset_on_boot), on %s", client.name,
                 client.image_path.name, effect.cause)

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
            self._remove_client(name)
            if self.policy is not None and self.policy.adoptions is not None:
                self.policy.adoptions.adopted = max(0, self.policy.adoptions.adopted - 1)
        return adopted.dispose_disk(self.config.server.state_dir, name, delete_disk)

    def _reservations(self, name: str) -> Reservations:
        # Persistent reservations (with APTPL) outlive restarts: one file per target and disk.
        reservations = Reservations(path=self.config.server.state_dir / "reservations" / f"{name}.json")
        reservations.load()
        return reservations

    def _client_unit(self, client: BootClient) -> LogicalUnit:
        unit = LogicalUnit(f"client:{client.name}", self.stores[f"client:{client.name}"],
                           target_name=client.target_iqn, reservations=self._reservations(f"client-{client.name}"))
        self.client_units[client.name] = unit
        return unit

    def _unit(self, target_iqn: str, disk_name: str) -> LogicalUnit:
        return LogicalUnit(disk_name, self.stores[disk_name], target_name=target_iqn,
                           readonly=self.config.disk(disk_name).readonly,
                           reservations=self._reservations(f"{target_iqn.replace(':', '_')}@{disk_name}"))

    async def start(self) -> None:
        self.admin = AdminServer(self)
        try:
            await self.admin.start()
        except OSError as exc:
            self.admin = None
            raise StartupError(f"{self.config.path}: server.state_dir: admin socket: {exc.strerror or exc}") from None
        self.backup.loop = asyncio.get_running_loop()
        self.backup.start()
        iscsi = self.config.iscsi
        settings = ServerSettings(limits=TargetLimits(digests=iscsi.digests),
                                  queue_depth=iscsi.queue_depth, max_sessions=iscsi.max_sessions,
                                  nop_interval=iscsi.nop_interval, nop_timeout=iscsi.nop_timeout,
                                  login_timeout=iscsi.login_timeout)
        self.server = IscsiServer(self.directory, settings)
        try:
            self.bound = await self.server.start([(p.host, p.port) for p in iscsi.portals])
        except OSError as exc:
            raise StartupError(f"{self.config.path}: iscsi.portals: cannot listen: {exc.strerror or exc}") from None
        for host, port in self.bound:
            log.info("iSCSI portal listening on %s", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if self.config.dhcp.mode != "off":
            await self._start_dhcp()
        if self.config.web.listen is not None:
            web = self.config.web
            self.web = WebServer(self, web.token)
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

    async def _start_dhcp(self) -> None:
        dhcp = self.config.dhcp
        try:
            address, mask = interface_ipv4(dhcp.interface)
        except OSError as exc:
            raise StartupError(f"{self.config.path}: dhcp.interface: {exc}") from None
        server_ip = dhcp.server_ip or address
        if not any(host in (server_ip, "0.0.0.0", "") for host, _ in self.bound):
            log.warning("no iSCSI portal listens on %s, the address clients are told to boot from "
                        "(add \"%s:3260\" or \"0.0.0.0:3260\" to iscsi.portals)", server_ip, server_ip)
        clients = boot_clients(self.config)
        leases = self.leases = LeaseStore(self.config.server.state_dir / "leases.sqlite", dhcp.pool,
                            {c.config.mac: c.config.ip for c in clients if c.config.ip})
        leases.start_writer()  # lease commits leave the event loop, grouped
        port = self.bound[0][1] if self.bound else 3260
        policy = self.policy = DhcpPolicy(dhcp, server_ip, mask, leases,
                                          {c.config.mac: c for c in self.clients.values()}, iscsi_port=port)
        policy.adoptions.adopted = sum(1 for c in self.clients.values() if c.origin == "adopted")
        self.dhcp = DhcpService(policy, dhcp.interface, carry_out=self.carry_out)
        if dhcp.mode == "proxy":
            self.pxe = DhcpService(policy, dhcp.interface, port=4011, carry_out=self.carry_out)
        try:
            await self.dhcp.start()
            if self.pxe is not None:
                await self.pxe.start()
        except OSError as exc:
            raise StartupError(f"{self.config.path}: dhcp: cannot listen on {dhcp.interface} port 67: "
                               f"{exc.strerror or exc}") from None
        try:  # in proxy mode the site's routers own IPv6: no answers to solicitations
            self.ra = RouterAdvertiser(dhcp.interface, answer_solicitations=dhcp.mode == "full")
            self.ra.start()
        except OSError as exc:
            log.warning("no IPv6 router advertisements on %s (%s): iPXE clients boot ~15 s slower",
                        dhcp.interface, exc)
            self.ra = None

        def script(name: str) -> bytes | None:  # clients added by a reload get theirs too
            client = next((c for c in self.clients.values() if c.script_name == name), None)
            return client.ipxe_script(server_ip, port) if client else None

        self.tftp = TftpService(self.config.tftp_root, server_ip, generated=script)
        self.tftp.start()
        if self.config.dns.enabled:
            names = {c.name: c.config.ip for c in clients if c.config.ip}

            def table() -> dict[str, str]:
                current = dict(names)
                for lease in leases.all():
                    if lease.hostname and lease.state == "bound":
                        current.setdefault(lease.hostname, lease.ip)
                return current

            self.dns = DnsService(DnsAnswers(dhcp.domain, table), self.config.dns.upstream)
            try:
                await self.dns.start(server_ip, self.config.dns.port)
            except OSError as exc:
                raise StartupError(f"{self.config.path}: dns.port: cannot listen: {exc.strerror or exc}") from None

    def reload(self) -> dict[str, list[str]]:
        """Re-read the configuration file and apply what can change while serving:
        clients, disks and targets added, removed or changed. Other sections wait for a restart.
        Runs on the event loop (sessions and DHCP state live there)."""
        old, new = self.config, load_config(self.config.path)
        applied: list[str] = []
        restart = [name for name in ("server", "iscsi", "dhcp", "dns", "tftp_root", "images", "web")
                   if getattr(new, name) != getattr(old, name)]
        old_targets, new_targets = {t.iqn: t for t in old.targets}, {t.iqn: t for t in new.targets}
        old_disks, new_disks = {d.name: d for d in old.disks}, {d.name: d for d in new.disks}
        changed_disks = {name for name, disk in old_disks.items() if new_disks.get(name) != disk}
        for iqn, target in old_targets.items():  # a target over a changed disk is rebuilt too
            if new_targets.get(iqn) != target or changed_disks & set(target.luns):
                self._drop_sessions(iqn)
                self.directory.remove(iqn)
                applied.append(f"target {iqn} {'changed' if iqn in new_targets else 'removed'}")
        for name, disk in old_disks.items():
            if new_disks.get(name) != disk:
                self.backup.engine.volumes.pop(name, None)
                self.stores.pop(name).close()
                applied.append(f"disk {name} {'changed' if name in new_disks else 'removed'}")
        config_clients = {c.name for c in old.clients}
        wanted = {c.name: c for c in boot_clients(new)}
        for name in sorted(config_clients):
            if name not in wanted or wanted[name].config != self.clients[name].config:
                self._remove_client(name)
                applied.append(f"client {name} {'changed' if name in wanted else 'removed'}")
        self.config = new
        self.backup.config = new
        if new.snapshots != old.snapshots:
            self.backup.engine.min_free = new.snapshots.min_free
            self.backup.start_schedules()
            applied.append("snapshot schedules and settings")
        for name, disk in new_disks.items():
            if name not in self.stores:
                self._add_disk(disk)
                applied.append(f"disk {name} added")
        for iqn, target in new_targets.items():
            if old_targets.get(iqn) != target or changed_disks & set(target.luns):
                self._add_target(target)
                if iqn not in old_targets:
                    applied.append(f"target {iqn} added")
        for name in new_disks:
            self._disk_access(name)
        for name, client in wanted.items():
            if name not in self.clients:
                self._add_client(client)
                if self.policy is not None:
                    self.policy.clients[client.config.mac] = client
                applied.append(f"client {name} added")
        log.info("configuration reloaded: %s%s", "; ".join(applied) or "nothing to apply",
                 f" (restart needed for: {', '.join(restart)})" if restart else "")
        return {"applied": applied, "restart_needed": restart}

    def _drop_sessions(self, target_iqn: str) -> None:
        if self.server is not None:
            self.server.registry.drop_target(target_iqn)

    def _remove_client(self, name: str) -> None:
        client = self.clients.pop(name)
        self._drop_sessions(client.target_iqn)
        self.directory.remove(client.target_iqn)
        if self.policy is not None:
            self.policy.clients.pop(client.config.mac, None)
        self.backup.engine.volumes.pop(name, None)
        self.client_units.pop(name, None)
        self.stores.pop(f"client:{name}").close()  # its disk file and snapshots stay

    def clients_overview(self) -> list[dict[str, object]]:
        """What the dashboard shows of each client (runs on the event loop)."""
        registry = self.server.registry if self.server else None
        online = {s.target_name for s in registry.sessions.values()} if registry else set()
        rows = []
        for name, client in sorted(self.clients.items()):
            lease = self.leases.lookup(client.config.mac) if self.leases else None
            try:
                used = allocated_bytes(client.disk_path)
            except OSError:
                used = 0
            rows.append({"name": name, "mac": client.config.mac, "ip": client.config.ip or (lease.ip if lease else ""),
                         "online": client.target_iqn in online, "last_boot": self.last_boot.get(name),
                         "image": client.config.image, "disk": str(client.disk_path), "disk_bytes": used,
                         "target": client.target_iqn, "origin": client.origin})
        return rows

    async def stop(self) -> None:
        if self.web is not None:
            self.web.close()
        if self.admin is not None:
            self.admin.close()
        await asyncio.get_running_loop().run_in_executor(None, self.backup.stop)
        for service in (self.dhcp, self.pxe, self.dns, self.ra):
            if service is not None:
                service.close()
        if self.leases is not None:  # the last changes are committed before the writer ends
            await asyncio.get_running_loop().run_in_executor(None, self.leases.close)
        if self.tftp is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.tftp.stop)
        if self.server is not None:
            await self.server.stop()
        for name, store in self.stores.items():
            try:
                store.flush()
            except StoreError as exc:
                log.error("flushing %s at shutdown: %s", name, exc)
            store.close()
        self.backup.close()


def _open_disk(config: Config, disk: DiskConfig) -> BlockStore:
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


def _open_client_disk(config: Config, client: BootClient) -> BlockStore:
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


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then stop accepting, close sessions, flush, return."""
    # Every disk layer (snapshots stack them) and every session holds a descriptor.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    running = other_instance(config.server.state_dir)
    if running:
        raise StartupError(f"{config.path}: {running}")
    app = Appliance(config)
    app.open_disks()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    died: list[str] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await app.start()
        if app.tftp is not None and not app.tftp.alive:
            raise StartupError(f"{config.path}: tftp: {app.tftp.failed}")
        tasks = [loop.create_task(app.park_idle_disks()), loop.create_task(_watch(app, died, stop))]
        log.info("bootsrv ready")
        await stop.wait()
        log.info("stopping")
    finally:
        for task in tasks:
            task.cancel()
        await app.stop()
    if died:
        raise StartupError(f"{config.path}: {died[0]}")


async def _watch(app: Appliance, died: list[str], stop: asyncio.Event) -> None:
    """A service that dies is never silently gone: the server says so and exits (a supervisor
    such as systemd restarts it), rather than serve a lab that can no longer boot."""
    while True:
        await asyncio.sleep(1.0)
        if app.tftp is not None and not app.tftp.alive:
            died.append(f"the TFTP service died ({app.tftp.failed or 'its thread ended'}); stopping bootsrv")
            log.error("%s", died[0])
            stop.set()
            return
