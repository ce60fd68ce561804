"""[[client]]: the machines that boot from us, each by MAC, over one [[image]]."""

from __future__ import annotations

from typing import Collection

from bootsrv.config.model import ClientConfig, default_of
from bootsrv.config.modes import ImageUpdate, spelled
from bootsrv.config.names import HOST_RE, MAC_RE
from bootsrv.config.reader import Section, ipv4
from bootsrv.config.sections import chap as chap_section


def _client(section: Section, images: Collection[str], taken: list[ClientConfig]) -> ClientConfig:
    name = section.get("name", str, "a client (host) name", required=True)
    if not HOST_RE.match(name) or any(c.name == name for c in taken):
        section.fail("name", "a unique host name (lower-case letters, digits, '-')", name)
    mac = section.get("mac", str, 'a MAC address like "52:54:00:12:34:56"', required=True).lower()
    if not MAC_RE.match(mac):
        section.fail("mac", 'a MAC address like "52:54:00:12:34:56"', mac)
    mac = mac.replace("-", ":")
    if any(c.mac == mac for c in taken):
        section.fail("mac", "a MAC no other [[client]] uses", mac)
    image = section.get("image", str, "an [[image]] name", required=True)
    if image not in images:
        section.fail("image", f"one of the [[image]] names ({', '.join(sorted(images)) or 'none defined'})", image)
    ip = section.get("ip", str, "an IPv4 address", default_of(ClientConfig, "ip"))
    ip = ipv4(section, "ip", ip) if ip else ip
    reset = section.get("reset_on_boot", bool, "true or false", default_of(ClientConfig, "reset_on_boot"))
    chap = chap_section.parse(section, "chap")
    update = section.choice("on_image_update", ImageUpdate, spelled(ImageUpdate),
                            default_of(ClientConfig, "on_image_update"))
    section.done()
    return ClientConfig(name, mac, image, ip, reset, chap, update)


def parse(top: Section, images: Collection[str]) -> tuple[ClientConfig, ...]:
    clients: list[ClientConfig] = []
    for section in top.entries("client", "[[client]] tables"):
        clients.append(_client(section, images, clients))
    return tuple(clients)
