"""[dhcp]: the DHCP mode, the pool handed out in full mode, and the unknown-client policy.

Whether `unknown_clients` names a configured image is a cross-check (the images are
read later); this parser only reads the string.
"""

from __future__ import annotations

from bootsrv.config.model import DhcpConfig
from bootsrv.config.modes import DhcpMode, UnknownClients, listed, spelled
from bootsrv.config.reader import Section, ipv4, parse_duration

DEFAULTS = DhcpConfig()
_UNKNOWN = f"{listed(UnknownClients)} or an image name"
_RANGE = 'a range like "10.77.0.100-10.77.0.199"'


def _pool(section: Section, mode: DhcpMode) -> tuple[str, str] | None:
    pool_text = section.get("pool", str, _RANGE, DEFAULTS.pool)
    if pool_text is None:
        if mode == DhcpMode.FULL:
            section.fail("pool", 'an address range (full mode hands out addresses), like "10.77.0.100-10.77.0.199"')
        return None
    first, sep, last = pool_text.partition("-")
    if not sep:
        section.fail("pool", _RANGE, pool_text)
    return ipv4(section, "pool", first.strip()), ipv4(section, "pool", last.strip())


def _at_least(section: Section, key: str, low: int, expected: str, default: int) -> int:
    value = section.get(key, int, expected, default)
    if value < low:
        section.fail(key, expected, value)
    return value


def parse(top: Section) -> DhcpConfig:
    section = top.sub("dhcp", "a [dhcp] table")
    mode = section.choice("mode", DhcpMode, spelled(DhcpMode), DEFAULTS.mode)
    interface = section.get("interface", str, "a network interface name", DEFAULTS.interface)
    if mode != DhcpMode.OFF and not interface:
        section.fail("interface", "the interface to serve DHCP on (DHCP is on)")
    server_ip = section.get("server_ip", str, "an IPv4 address", DEFAULTS.server_ip)
    server_ip = ipv4(section, "server_ip", server_ip) if server_ip else server_ip
    pool = _pool(section, mode)
    router = section.get("router", str, "an IPv4 address", DEFAULTS.router)
    router = ipv4(section, "router", router) if router else router
    dns = tuple(ipv4(section, "dns", d) for d in section.get("dns", list, "a list of IPv4 addresses", DEFAULTS.dns))
    domain = section.get("domain", str, "a DNS domain like lab", DEFAULTS.domain)
    lease = parse_duration(section.get("lease_time", (int, str), 'a duration like "12h"', DEFAULTS.lease_time))
    if not lease:
        section.fail("lease_time", 'a duration like "12h"', section.table.get("lease_time"))
    # An image name stays as given: whether it names an [[image]] is a cross-check.
    unknown = UnknownClients.of(section.get("unknown_clients", str, _UNKNOWN, DEFAULTS.unknown_clients))
    max_adopted = _at_least(section, "max_adopted", 0, "a number of clients (0 or more)", DEFAULTS.max_adopted)
    per_minute = _at_least(section, "adopt_per_minute", 1, "a number of new clients a minute (1 or more)",
                           DEFAULTS.adopt_per_minute)
    section.done()
    return DhcpConfig(mode, interface, server_ip, pool, router, dns, domain, lease, unknown, max_adopted, per_minute)
