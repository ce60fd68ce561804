"""One interface for the network services the appliance runs: iSCSI, the lease writer,
DHCP (and proxy mode's port 4011), IPv6 RAs, TFTP, DNS and the boot HTTP.

A `Service` has a name, an async `start` (listening when it returns; a StartupError naming
the configuration file and key when it cannot) and an async `stop` (never raises), and says
through `died()` why it stopped serving on its own, if it did. The appliance starts a list of
them in order, stops them in reverse, and watches them all the same way. Adapters live here,
so the protocol classes (DhcpService, DnsService, TftpService, ...) keep their own shape.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

from bootsrv.config import StartupError
from bootsrv.dhcp.leases import LeaseStore
from bootsrv.dhcp.service import DhcpService
from bootsrv.dns import DnsService
from bootsrv.httpboot import BootHttp
from bootsrv.ra import RouterAdvertiser
from bootsrv.tftp import TftpService
from target.iscsi.connection import IscsiServer

log = logging.getLogger("bootsrv")


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def died(self) -> str | None:
        """Why the service stopped serving on its own; None while it serves (or was stopped)."""


def _cannot(config: Path, key: str, what: str, exc: OSError) -> StartupError:
    return StartupError(f"{config}: {key}: {what}: {exc.strerror or exc}")


class IscsiPortals:
    name = "iscsi"

    def __init__(self, server: IscsiServer, portals: list[tuple[str, int]], config: Path) -> None:
        self.server, self.portals, self.config = server, portals, config
        self.bound: list[tuple[str, int]] = []

    async def start(self) -> None:
        try:
            self.bound = await self.server.start(self.portals)
        except OSError as exc:
            raise _cannot(self.config, "iscsi.portals", "cannot listen", exc) from None
        for host, port in self.bound:
            log.info("iSCSI portal listening on %s", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def stop(self) -> None:
        await self.server.stop()

    def died(self) -> str | None:
        return None


class LeaseWriter:
    """Lease commits leave the event loop, grouped; stopped after DHCP, so the last changes
    are committed before the writer ends."""
    name = "leases"

    def __init__(self, leases: LeaseStore) -> None:
        self.leases = leases

    async def start(self) -> None:
        self.leases.start_writer()

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.leases.close)

    def died(self) -> str | None:
        return None


class DhcpPort:
    def __init__(self, service: DhcpService, config: Path) -> None:
        self.service, self.config = service, config
        self.name = "dhcp" if service.port == 67 else f"dhcp port {service.port}"

    async def start(self) -> None:
        try:
            await self.service.start()
        except OSError as exc:  # (port 67 in the message for 4011 too, as it always said)
            raise _cannot(self.config, "dhcp", f"cannot listen on {self.service.interface} port 67", exc) from None

    async def stop(self) -> None:
        self.service.close()

    def died(self) -> str | None:
        return None


class RouterAdvertisements:
    """Optional: without RAs iPXE clients only boot slower, so a failure is a warning and the
    service is then simply absent (`running` False)."""
    name = "ra"

    def __init__(self, interface: str, answer_solicitations: bool) -> None:
        self.interface, self.answer_solicitations = interface, answer_solicitations
        self.advertiser: RouterAdvertiser | None = None

    @property
    def running(self) -> bool:
        return self.advertiser is not None

    async def start(self) -> None:
        try:
            advertiser = RouterAdvertiser(self.interface, answer_solicitations=self.answer_solicitations)
            advertiser.start()
        except OSError as exc:
            log.warning("no IPv6 router advertisements on %s (%s): iPXE clients boot ~15 s slower",
                        self.interface, exc)
            return
        self.advertiser = advertiser

    def advertise(self, to_mac: str | None = None) -> None:
        if self.advertiser is not None:
            self.advertiser.advertise(to_mac)

    async def stop(self) -> None:
        if self.advertiser is not None:
            self.advertiser.close()

    def died(self) -> str | None:
        return None


class TftpThread:
    """The thread adapter: tftpy's blocking loop runs on its own thread (TftpService); start
    fails if it could not listen, stop joins the thread off the event loop."""
    name = "tftp"

    def __init__(self, service: TftpService, config: Path) -> None:
        self.service, self.config = service, config

    async def start(self) -> None:
        self.service.start()
        if not self.service.alive:
            raise StartupError(f"{self.config}: tftp: {self.service.failed}")

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.service.stop)

    def died(self) -> str | None:
        if self.service.alive:
            return None
        return f"the TFTP service died ({self.service.failed or 'its thread ended'}); stopping bootsrv"


class DnsPort:
    name = "dns"

    def __init__(self, service: DnsService, host: str, port: int, config: Path) -> None:
        self.service, self.host, self.port, self.config = service, host, port, config

    async def start(self) -> None:
        try:
            await self.service.start(self.host, self.port)
        except OSError as exc:
            raise _cannot(self.config, "dns.port", "cannot listen", exc) from None

    async def stop(self) -> None:
        self.service.close()

    def died(self) -> str | None:
        return None


class HttpPort:
    name = "http"

    def __init__(self, service: BootHttp, host: str, port: int, config: Path) -> None:
        self.service, self.host, self.port, self.config = service, host, port, config

    async def start(self) -> None:
        try:
            port = await self.service.start(self.host, self.port)
        except OSError as exc:
            raise _cannot(self.config, "http.port", "cannot listen", exc) from None
        log.info("boot HTTP (installer ISOs, UEFI HTTP boot) on %s:%d", self.host, port)

    async def stop(self) -> None:
        self.service.close()

    def died(self) -> str | None:
        return None
