"""The DHCP server's decisions, sans-IO: a decoded request in, a reply and
where to send it out, plus effects for the appliance to carry out (a client
powering on, a new PXE client to adopt). Full mode only hands out addresses;
PXE/iPXE options make each known client boot its own iSCSI disk.

Only a DISCOVER with vendor class PXEClient (firmware PXE ROMs, iPXE) or HTTPClient
(UEFI HTTP boot) means "powered on": the machine is in its boot firmware and no OS is
using its disk. An OS's own DHCP client (udhcpc, ipconfig, networkd, dhclient)
sends none, and must never reset a disk or drop a session.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Union

from bootsrv.clients import BootClient
from bootsrv.config import DhcpConfig
from bootsrv.config.modes import DhcpMode, UnknownClients
from bootsrv.dhcp import packet as p
from bootsrv.dhcp.leases import OFFER_HOLD, LeaseStore

log = logging.getLogger("bootsrv.dhcp")

BIOS_BOOT_FILE = "undionly.kpxe"
EFI_BOOT_FILE = "snponly.efi"
EFI_ARCHES = frozenset({6, 7, 9})
# UEFI HTTP boot (vendor class HTTPClient): only x64 (client architecture 16) is answered, with
# the URL of the EFI iPXE that TFTP serves. 15 (IA32) and 19 (ARM64) would get a binary they
# cannot run (Debian's ipxe ships x86-64 EFI builds only), so they get no boot file and their
# firmware falls back to its next boot entry.
HTTP_BOOT_FILES = {16: EFI_BOOT_FILE}


@dataclass(frozen=True, slots=True)
class Reply:
    packet: p.DhcpPacket
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class PoweringOn:
    """A known client's boot firmware asked for an address: its old sessions are stale."""
    client: BootClient
    cause: str  # the DHCP message, for the log
    xid: int  # firmware repeats a DISCOVER with the same xid until it has its offers


@dataclass(frozen=True, slots=True)
class Adopt:
    """A PXE client no [[client]] names: give it a disk over dhcp.unknown_clients' image."""
    mac: str
    cause: str


@dataclass(frozen=True, slots=True)
class EndIpv6Wait:
    """iPXE configures IPv6 beside DHCP and waits ~15 s for a router on an IPv4-only boot LAN:
    tell it there is none (to all nodes where we are the LAN's DHCP server, else to it alone)."""
    mac: str
    only_to_it: bool


Effect = Union[PoweringOn, Adopt, EndIpv6Wait]
REFUSAL_LOG_LIMIT = 256  # MACs whose refusal is logged one by one; past that, a count each minute


def describe(request: p.DhcpPacket) -> str:
    """One line naming a DHCP message: type, MAC, vendor class, user class, architecture."""
    vendor = request.options.get(p.OPT_VENDOR_CLASS, b"").decode("ascii", "replace")
    user = b",".join(request.user_classes()).decode("ascii", "replace")
    arch = request.client_arch
    return (f"DHCP{p.MESSAGE_NAMES.get(request.message_type, '?')} xid {request.xid:#010x} from {request.mac}"
            f" vendor class {vendor or '-'!r}" + (f" user class {user!r}" if user else "")
            + (f" arch {arch}" if arch is not None else ""))


def is_pxe(request: p.DhcpPacket) -> bool:
    return request.options.get(p.OPT_VENDOR_CLASS, b"").startswith(b"PXEClient")


def is_http_boot(request: p.DhcpPacket) -> bool:
    """UEFI firmware's HTTP boot asking (iPXE itself never says HTTPClient)."""
    return request.options.get(p.OPT_VENDOR_CLASS, b"").startswith(b"HTTPClient") and not request.is_ipxe


def powered_on(request: p.DhcpPacket) -> bool:
    return request.message_type == p.DISCOVER and (is_pxe(request) or is_http_boot(request))


@dataclass(slots=True)
class Adoptions:
    """How many unknown PXE clients may be adopted: at most `limit` in all and `per_minute`
    a minute; refusals are logged once per MAC, and past REFUSAL_LOG_LIMIT MACs as a count."""
    limit: int
    per_minute: int
    adopted: int = 0
    pending: set[str] = field(default_factory=set)
    recent: deque[float] = field(default_factory=deque)
    refused_logged: set[str] = field(default_factory=set)
    refused_unlogged: int = 0
    last_summary: float = 0.0

    def allow(self, mac: str, now: float) -> bool:
        while self.recent and self.recent[0] < now - 60:
            self.recent.popleft()
        if mac in self.pending:
            return False
        if self.adopted + len(self.pending) >= self.limit:
            self._refuse(mac, now, f"dhcp.max_adopted = {self.limit} clients adopted already")
            return False
        if len(self.recent) >= self.per_minute:
            self._refuse(mac, now, f"more than dhcp.adopt_per_minute = {self.per_minute} new clients a minute")
            return False
        self.recent.append(now)
        self.pending.add(mac)
        return True

    def _refuse(self, mac: str, now: float, why: str) -> None:
        if mac in self.refused_logged:
            return
        if len(self.refused_logged) < REFUSAL_LOG_LIMIT:
            self.refused_logged.add(mac)
            log.warning("not adopting PXE client %s: %s", mac, why)
            return
        self.refused_unlogged += 1
        if now - self.last_summary >= 60:
            self.last_summary = now
            log.warning("not adopting %d more PXE clients (%s)", self.refused_unlogged, why)
            self.refused_unlogged = 0

    def done(self, mac: str, ok: bool) -> None:
        self.pending.discard(mac)
        if ok:
            self.adopted += 1

    def forgotten(self) -> None:
        """An adopted client was removed: its place may be taken again."""
        self.adopted = max(0, self.adopted - 1)


@dataclass(slots=True)
class DhcpPolicy:
    config: DhcpConfig
    server_ip: str
    subnet_mask: str
    leases: LeaseStore
    # By MAC. Read only: the appliance's inventory owns this mapping and keeps it current.
    clients: dict[str, BootClient] = field(default_factory=dict)
    iscsi_port: int = 3260
    http_port: int = 8069  # bootsrv's boot HTTP ([http] port), for HTTP boot's URL
    effects: list[Effect] = field(default_factory=list)  # what handle() asks for; the shell takes them
    adoptions: Adoptions | None = None
    # Clients whose iPXE must run their TFTP script instead of sanbooting the root-path
    # (an installer boot: its script attaches the disk and boots an ISO). Never blocks.
    scripted: Callable[[str], bool] = lambda name: False

    def __post_init__(self) -> None:
        if self.adoptions is None:
            self.adoptions = Adoptions(self.config.max_adopted, self.config.adopt_per_minute)

    @property
    def adopting(self) -> bool:
        return not UnknownClients.is_word(self.config.unknown_clients)  # the name of an image to adopt with

    def take_effects(self) -> list[Effect]:
        effects, self.effects = self.effects, []
        return effects

    def handle(self, request: p.DhcpPacket, now: float, *, port: int = 67,
               source: tuple[str, int] = ("0.0.0.0", 68)) -> Reply | None:
        if request.op != p.BOOTREQUEST:
            return None
        kind = request.message_type
        client = self.clients.get(request.mac)
        if client is None and self.adopting:
            # Only boot firmware is adopted. No answer yet: the shell asks again once the disk exists.
            # Other unknown MACs get nothing here (unknown_clients = "lease" is for them).
            if powered_on(request) and self.adoptions.allow(request.mac, now):
                self.effects.append(Adopt(request.mac, describe(request)))
            return None
        if client is None and self.config.unknown_clients == UnknownClients.IGNORE:
            log.debug("ignoring %s from unknown %s", p.MESSAGE_NAMES.get(kind, kind), request.mac)
            return None
        if client is not None and powered_on(request) and (self.config.mode != DhcpMode.PROXY or port == 67):
            self.effects.append(PoweringOn(client, describe(request), request.xid))
        if kind == p.DISCOVER and request.is_ipxe and port == 67 and (client is not None or
                                                                        self.config.mode == DhcpMode.FULL):
            self.effects.append(EndIpv6Wait(request.mac, only_to_it=self.config.mode == DhcpMode.PROXY))
        if self.config.mode == DhcpMode.PROXY:
            return self._proxy(request, client, port, source)
        if kind == p.DISCOVER:
            return self._discover(request, client, now)
        if kind == p.REQUEST:
            return self._request(request, client, now)
        if kind == p.RELEASE:
            lease = self.leases.lookup(request.mac)
            if lease is not None and lease.ip == request.ciaddr:
                self.leases.release(request.mac)
                log.info("%s released %s", request.mac, request.ciaddr)
            return None
        if kind == p.DECLINE:
            declined = request.option_ip(p.OPT_REQUESTED_IP)
            if declined:
                log.warning("%s declined %s (in use by someone else?)", request.mac, declined)
                self.leases.decline(declined, now)
            return None
        if kind == p.INFORM:
            reply = self._reply(request, p.ACK, "0.0.0.0", client)
            reply.ciaddr = request.ciaddr
            return self._route(request, reply)
        return None

    def _proxy(self, request: p.DhcpPacket, client: BootClient | None, port: int,
               source: tuple[str, int]) -> Reply | None:
        """proxyDHCP (PXE spec): boot options only; the site's server gives the address.
        HTTP boot's firmware takes a proxy offer too (no yiaddr, HTTPClient and the URL: UEFI
        2.5+ "DHCP only + proxy IP URI") and asks nothing on port 4011."""
        if client is None or not (is_pxe(request) or is_http_boot(request)):
            return None
        kind = request.message_type
        if port == 67 and kind == p.DISCOVER and is_http_boot(request):
            reply = p.DhcpPacket(xid=request.xid, flags=request.flags, giaddr=request.giaddr, chaddr=request.chaddr,
                                 options={p.OPT_MESSAGE_TYPE: bytes((p.OFFER,)),
                                          p.OPT_SERVER_ID: p.ip_bytes(self.server_ip)})
            if not self._http_boot(request, reply):
                return None
            log.info("proxy HTTP boot offer to %s (%s)", request.mac, client.name)
            return self._route(request, reply, force_broadcast=True)
        if port == 67 and kind == p.DISCOVER:
            reply = self._proxy_reply(request, p.OFFER, client)
            log.info("proxy offer to %s (%s)", request.mac, client.name)
            return self._route(request, reply, force_broadcast=True)
        if port == 4011 and kind in (p.REQUEST, p.INFORM):
            log.info("proxy ACK to %s (%s) on port 4011", request.mac, client.name)
            reply = self._proxy_reply(request, p.ACK, client)
            reply.ciaddr = request.ciaddr
            return Reply(reply, source[0], source[1])
        return None

    def _proxy_reply(self, request: p.DhcpPacket, kind: int, client: BootClient) -> p.DhcpPacket:
        options = {p.OPT_MESSAGE_TYPE: bytes((kind,)), p.OPT_SERVER_ID: p.ip_bytes(self.server_ip),
                   p.OPT_VENDOR_CLASS: b"PXEClient"}
        reply = p.DhcpPacket(xid=request.xid, flags=request.flags, giaddr=request.giaddr, chaddr=request.chaddr,
                             options=options)
        self._boot_options(request, reply, client)
        if request.is_ipxe:
            # iPXE takes a proxy answer only with a next-server and boot file: a per-client
            # script over TFTP that sanboots the same root-path (a script, so no chainload loop).
            # One way to boot, not two: with a root-path too, iPXE attaches the disk first and
            # the script's sanboot then fails on screen ("Could not open SAN device").
            for code in (p.OPT_ROOT_PATH, p.OPT_ISCSI_INITIATOR, p.OPT_IPXE_ENCAP):
                options.pop(code, None)
            reply.siaddr = self.server_ip
            reply.file = client.script_name.encode()
            options[p.OPT_BOOTFILE] = client.script_name.encode()
        return reply

    def _discover(self, request: p.DhcpPacket, client: BootClient | None, now: float) -> Reply | None:
        wanted = request.option_ip(p.OPT_REQUESTED_IP)
        ip = self.leases.choose(request.mac, wanted, now)
        if ip is None:
            log.error("address pool exhausted: no offer for %s", request.mac)
            return None
        self.leases.record(request.mac, ip, now + OFFER_HOLD, "offered", client.name if client else "")
        log.info("offering %s to %s%s", ip, request.mac, f" ({client.name})" if client else "")
        return self._route(request, self._reply(request, p.OFFER, ip, client))

    def _request(self, request: p.DhcpPacket, client: BootClient | None, now: float) -> Reply | None:
        server_id = request.option_ip(p.OPT_SERVER_ID)
        if server_id is not None and server_id != self.server_ip:
            lease = self.leases.lookup(request.mac)
            if lease is not None and lease.state == "offered":
                self.leases.release(request.mac)  # it chose another server
            return None
        wanted = request.option_ip(p.OPT_REQUESTED_IP) or request.ciaddr
        expected = self.leases.choose(request.mac, wanted, now)
        if wanted == "0.0.0.0" or expected != wanted:
            log.info("NAK to %s asking for %s", request.mac, wanted)
            nak = p.DhcpPacket(xid=request.xid, flags=request.flags | 0x8000, giaddr=request.giaddr,
                               chaddr=request.chaddr, options={p.OPT_MESSAGE_TYPE: bytes((p.NAK,)),
                                                               p.OPT_SERVER_ID: p.ip_bytes(self.server_ip)})
            return self._route(request, nak, force_broadcast=True)
        self.leases.record(request.mac, wanted, now + self.config.lease_time, "bound", client.name if client else "")
        log.info("lease %s -> %s%s", wanted, request.mac, f" ({client.name})" if client else "")
        return self._route(request, self._reply(request, p.ACK, wanted, client))

    def _reply(self, request: p.DhcpPacket, kind: int, ip: str, client: BootClient | None) -> p.DhcpPacket:
        lease = int(self.config.lease_time)
        options: dict[int, bytes] = {
            p.OPT_MESSAGE_TYPE: bytes((kind,)),
            p.OPT_SERVER_ID: p.ip_bytes(self.server_ip),
            p.OPT_SUBNET: p.ip_bytes(self.subnet_mask),
        }
        if kind != p.ACK or ip != "0.0.0.0":
            options[p.OPT_LEASE_TIME] = lease.to_bytes(4, "big")
            options[p.OPT_RENEWAL] = (lease // 2).to_bytes(4, "big")
            options[p.OPT_REBINDING] = (lease * 7 // 8).to_bytes(4, "big")
        if self.config.router:
            options[p.OPT_ROUTER] = p.ip_bytes(self.config.router)
        if self.config.dns:
            options[p.OPT_DNS] = b"".join(p.ip_bytes(d) for d in self.config.dns)
        if self.config.domain:
            options[p.OPT_DOMAIN] = self.config.domain.encode()
        reply = p.DhcpPacket(xid=request.xid, flags=request.flags, yiaddr=ip, giaddr=request.giaddr,
                             chaddr=request.chaddr, options=options)
        if client is not None:
            options[p.OPT_HOSTNAME] = client.name.encode()
            self._boot_options(request, reply, client)
        if p.OPT_RELAY_AGENT in request.options:
            options[p.OPT_RELAY_AGENT] = request.options[p.OPT_RELAY_AGENT]  # echoed (RFC 3046)
        return reply

    def _boot_options(self, request: p.DhcpPacket, reply: p.DhcpPacket, client: BootClient) -> None:
        options = reply.options
        vendor = request.options.get(p.OPT_VENDOR_CLASS, b"")
        if vendor.startswith(b"PXEClient"):
            # A complete PXE answer: iPXE then need not wait for proxyDHCP offers.
            options[p.OPT_VENDOR_CLASS] = b"PXEClient"
            if p.OPT_UUID in request.options:
                options[p.OPT_UUID] = request.options[p.OPT_UUID]
        if is_http_boot(request):
            self._http_boot(request, reply)
            return
        if request.is_ipxe and self.scripted(client.name):
            # iPXE already runs and has more to do than sanboot one disk: its script says what.
            reply.siaddr = self.server_ip
            reply.file = client.script_name.encode()
            options[p.OPT_BOOTFILE] = client.script_name.encode()
            options[p.OPT_IPXE_ENCAP] = bytes((176, 1, 1))  # complete: no waiting for proxy offers
            return
        if request.is_ipxe:
            # iPXE already runs: hand it the disk (it sanboots a root-path with no filename).
            options[p.OPT_ROOT_PATH] = client.root_path(self.server_ip, self.iscsi_port).encode()
            options[p.OPT_ISCSI_INITIATOR] = client.initiator_iqn.encode()
            # iPXE's own options (175): 176 = 1, this answer is complete: no waiting for
            # ProxyDHCP offers, no ProxyDHCPREQUEST to port 4011 (seconds at every boot).
            encapsulated = bytes((176, 1, 1))
            if client.config.chap is not None:  # 190/191: CHAP user and secret
                user, secret = client.config.chap.user.encode(), client.config.chap.secret.encode()
                encapsulated += bytes((190, len(user))) + user + bytes((191, len(secret))) + secret
            options[p.OPT_IPXE_ENCAP] = encapsulated
            return
        if vendor.startswith(b"PXEClient"):  # a firmware PXE ROM: chainload iPXE over TFTP
            boot_file = EFI_BOOT_FILE if request.client_arch in EFI_ARCHES else BIOS_BOOT_FILE
            reply.siaddr = self.server_ip
            reply.file = boot_file.encode()
            options[p.OPT_TFTP_SERVER] = self.server_ip.encode()
            options[p.OPT_BOOTFILE] = boot_file.encode()
            options[p.OPT_VENDOR_SPECIFIC] = bytes((6, 1, 8, 255))  # PXE discovery control: boot file as given

    def _http_boot(self, request: p.DhcpPacket, reply: p.DhcpPacket) -> bool:
        """UEFI HTTP boot: the firmware fetches iPXE from our boot HTTP, which then asks again
        as iPXE (user class iPXE, vendor class PXEClient) and is answered as every iPXE is.
        The firmware takes only an answer that says HTTPClient back (UEFI 2.5+ 24.7)."""
        boot_file = HTTP_BOOT_FILES.get(request.client_arch)
        if boot_file is None:
            log.info("no HTTP boot file for %s: client architecture %s (only 16, x64 UEFI, is served)",
                     request.mac, request.client_arch)
            return False
        url = f"http://{self.server_ip}:{self.http_port}/{boot_file}".encode()
        reply.options[p.OPT_VENDOR_CLASS] = b"HTTPClient"
        reply.options[p.OPT_BOOTFILE] = url
        reply.file = url
        return True

    def _route(self, request: p.DhcpPacket, reply: p.DhcpPacket, force_broadcast: bool = False) -> Reply:
        if request.giaddr != "0.0.0.0":
            return Reply(reply, request.giaddr, 67)  # through the relay agent
        if request.ciaddr != "0.0.0.0" and not force_broadcast:
            return Reply(reply, request.ciaddr, 68)
        return Reply(reply, "255.255.255.255", 68)  # unicast to a client without an address needs ARP help
