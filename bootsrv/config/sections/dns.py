"""[dns]: the small DNS server for the clients' names, and its forwarders."""

from __future__ import annotations

from bootsrv.config.model import DnsConfig
from bootsrv.config.reader import Section, ipv4

DEFAULTS = DnsConfig()


def parse(top: Section) -> DnsConfig:
    section = top.sub("dns", "a [dns] table")
    upstream = []
    for entry in section.get("upstream", list, 'a list of forwarders like "10.0.0.53" or "10.0.0.53:5353"', []):
        host, _, port = str(entry).partition(":")
        if port and not port.isdigit():
            section.fail("upstream", 'forwarders like "10.0.0.53" or "10.0.0.53:5353"', entry)
        upstream.append((ipv4(section, "upstream", host), int(port or 53)))
    dns = DnsConfig(section.get("enabled", bool, "true or false", DEFAULTS.enabled),
                    section.get("port", int, "a UDP port", DEFAULTS.port), tuple(upstream))
    if not 0 < dns.port < 65536:
        section.fail("port", "a UDP port from 1 to 65535", dns.port)
    section.done()
    return dns
