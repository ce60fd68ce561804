"""[iscsi]: portals, the base IQN, the session limits and timers, and the iSNS server."""

from __future__ import annotations

from bootsrv.config.model import IscsiConfig, Portal
from bootsrv.config.modes import Digests, spelled
from bootsrv.config.names import valid_iscsi_name
from bootsrv.config.reader import Section, parse_duration, portal

DEFAULTS = IscsiConfig()
_DURATION = 'seconds or a duration like "30s"'


def _bounded(section: Section, key: str, low: int, high: int, default: int) -> int:
    expected = f"an integer from {low} to {high}"
    value = section.get(key, int, expected, default)
    if not low <= value <= high:
        section.fail(key, expected, value)
    return value


def _duration(section: Section, key: str, default: float) -> float:
    value = parse_duration(section.get(key, (int, float, str), _DURATION, default))
    if value is None:
        section.fail(key, 'seconds or a duration like "30s", "5m"', section.table.get(key))
    return value


ISNS_PORT = 3205  # IANA's, as open-isns and tgt default to


def _isns(section: Section) -> Portal | None:
    expected = 'an iSNS server "host" or "host:port" such as "10.0.0.5" or "[fd00::5]:3205"'
    text = section.get("isns", str, expected)
    if text is None:
        return None
    host, port = text, str(ISNS_PORT)
    if text.startswith("["):  # an IPv6 literal, with or without a port
        host, _, rest = text[1:].partition("]")
        if rest:
            port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        section.fail("isns", f"{expected} (an IPv6 address in brackets)", text)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        section.fail("isns", expected, text)
    return Portal(host, int(port))


def parse(top: Section) -> IscsiConfig:
    section = top.sub("iscsi", "an [iscsi] table")
    portal_list = section.get("portals", list, 'a list of "host:port" strings')
    if portal_list == []:
        section.fail("portals", "at least one portal")
    portals = tuple(portal(section, p) for p in portal_list) if portal_list else DEFAULTS.portals
    base_iqn = section.get("base_iqn", str, "an iqn. name", DEFAULTS.base_iqn).lower()
    if not valid_iscsi_name(base_iqn):
        section.fail("base_iqn", 'an iSCSI name like "iqn.2026-11.lan.example"', base_iqn)
    queue_depth = _bounded(section, "queue_depth", 1, 1024, DEFAULTS.queue_depth)
    max_sessions = _bounded(section, "max_sessions", 1, 65535, DEFAULTS.max_sessions)
    timers = [_duration(section, key, getattr(DEFAULTS, key))
              for key in ("nop_interval", "nop_timeout", "login_timeout")]
    digests = section.choice("digests", Digests, spelled(Digests), DEFAULTS.digests)
    isns = _isns(section)
    section.done()
    return IscsiConfig(portals, base_iqn, queue_depth, max_sessions, *timers, digests, isns=isns)
