"""Which clients a wake request names: {"names": [...]}, {"all": true} or {"image": NAME}
(the `client.wake` operation's arguments), and waking them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from bootsrv import adopted
from bootsrv.config import Config
from bootsrv.wake.packet import magic_packet
from bootsrv.wake.send import WakeError, destination, send

log = logging.getLogger("bootsrv.wake")


@dataclass(frozen=True, slots=True)
class Sleeper:
    """A client that can be woken: its name, MAC and image."""
    name: str
    mac: str
    image: str


def configured(config: Config, state_dir: Path | None = None) -> dict[str, Sleeper]:
    """Without a running server: the [[client]]s and the adopted clients recorded in state_dir."""
    found = {c.name: Sleeper(c.name, c.mac, c.image) for c in config.clients}
    for record in adopted.load(state_dir or config.server.state_dir):
        found.setdefault(record.name, Sleeper(record.name, record.mac, record.image))
    return found


def choose(clients: Mapping[str, Sleeper], args: Mapping[str, Any], images: set[str]) -> list[Sleeper]:
    given = [key for key in ("names", "all", "image") if args.get(key)]
    if len(given) != 1:
        raise WakeError('wake: name the clients: {"names": [NAME, ...]}, {"all": true} or {"image": IMAGE}')
    if given[0] == "all":
        return [clients[name] for name in sorted(clients)]
    if given[0] == "image":
        image = str(args["image"])
        if image not in images:
            raise WakeError(f"no image {image!r} (images: {', '.join(sorted(images)) or 'none'})")
        return [clients[name] for name in sorted(clients) if clients[name].image == image]
    names = args["names"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise WakeError("wake: names: expected a list of client names")
    unknown = [name for name in names if name not in clients]
    if unknown:
        raise WakeError(f"no client named {', '.join(map(repr, unknown))}")
    return [clients[name] for name in dict.fromkeys(names)]


def wake(config: Config, clients: Mapping[str, Sleeper], args: Mapping[str, Any]) -> list[dict[str, str]]:
    """Send each chosen client its magic packet; what was sent, where (the operation's answer)."""
    chosen = choose(clients, args, {image.name for image in config.images})
    packets = [(magic_packet(c.mac), destination(config, c.name)) for c in chosen]
    send(packets)
    sent = [{"client": c.name, "mac": c.mac, "to": str(where)} for c, (_, where) in zip(chosen, packets)]
    for row in sent:
        log.info("wake: magic packet for %s (%s) sent to %s", row["client"], row["mac"], row["to"])
    return sent
