"""[wake], its [[wake.room]] and [[wake.schedule]] tables: where magic packets go, and when
clients are woken on a cron schedule.

A TOML key is either a table or an array of tables, so the schedules are
`[[wake.schedule]]` (as the snapshot schedules are `[[snapshots.schedule]]`) and the
settings stay in `[wake]`. APScheduler's cron parser is imported only when a schedule
is read (see sections/snapshots.py).
"""

from __future__ import annotations

import ipaddress
from typing import Collection

from bootsrv.config.model import Portal, WakeConfig, WakeRoom, WakeSchedule, default_of
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section

_BROADCAST = 'an IPv4 broadcast address, optionally with a port, like "10.2.0.255:9"'
_PATTERNS = 'a list of client names or patterns, like ["lab2-*"]'


def _broadcast(section: Section, key: str, port: int) -> Portal | None:
    text = section.get(key, str, _BROADCAST, None)
    if text is None:
        return None
    host, sep, port_text = text.partition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        section.fail(key, _BROADCAST, text)
    if sep and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        section.fail(key, _BROADCAST, text)
    return Portal(host, int(port_text) if sep else port)


def _patterns(section: Section, key: str, default: tuple[str, ...] | None) -> tuple[str, ...]:
    value = section.get(key, list, _PATTERNS, default, required=default is None)
    if not value or not all(isinstance(item, str) and item for item in value):
        section.fail(key, _PATTERNS, value)
    return tuple(value)


def _room(section: Section, port: int) -> WakeRoom:
    clients = _patterns(section, "clients", None)
    broadcast = _broadcast(section, "broadcast", port)
    if broadcast is None:
        section.fail("broadcast", f"{_BROADCAST} (the key is required)")
    section.done()
    return WakeRoom(clients, broadcast)


def _schedule(sub: Section, index: int, images: Collection[str], clients: Collection[str],
              taken: list[WakeSchedule]) -> WakeSchedule:
    from snapshots.schedule import valid_cron  # APScheduler: only when there is a schedule

    name = sub.get("name", str, "a schedule name", f"wake{index + 1}")
    if not NAME_RE.match(name) or any(s.name == name for s in taken):
        sub.fail("name", "a unique name of letters, digits, '.', '_' or '-'", name)
    cron = sub.get("cron", str, 'a cron expression like "30 6 * * 1-5"', required=True)
    problem = valid_cron(cron)
    if problem:
        sub.fail("cron", f'five cron fields like "30 6 * * 1-5" (minute hour day month weekday): {problem}', cron)
    image = sub.get("image", str, "an [[image]] name", default_of(WakeSchedule, "image"))
    if image and image not in images:
        sub.fail("image", f"one of the [[image]] names ({', '.join(sorted(images)) or 'none defined'})", image)
    if image and "clients" in sub.table:
        sub.fail("clients", "either clients or image, not both")
    who = _patterns(sub, "clients", default_of(WakeSchedule, "clients"))
    for name_or_pattern in who:
        if name_or_pattern not in clients and not any(c in name_or_pattern for c in "*?["):
            sub.fail("clients", f"client names ({', '.join(sorted(clients)) or 'none defined'}) or patterns",
                     name_or_pattern)
    sub.done()
    return WakeSchedule(name, cron, () if image else who, image)


def parse(top: Section, images: Collection[str], clients: Collection[str]) -> WakeConfig:
    """`images`, `clients`: the configured names a schedule may name."""
    section = top.sub("wake", "a [wake] table")
    interface = section.get("interface", str, "a network interface name", default_of(WakeConfig, "interface"))
    port = section.get("port", int, "a UDP port (1-65535)", default_of(WakeConfig, "port"))
    if not 0 < port < 65536:
        section.fail("port", "a UDP port (1-65535)", port)
    broadcast = _broadcast(section, "broadcast", port)
    rooms = tuple(_room(sub, port) for sub in section.entries("room", "[[wake.room]] tables"))
    schedules: list[WakeSchedule] = []
    for index, sub in enumerate(section.entries("schedule", "[[wake.schedule]] tables")):
        schedules.append(_schedule(sub, index, images, clients, schedules))
    section.done()
    return WakeConfig(interface, port, broadcast, rooms, tuple(schedules))
