"""What the lab's machines cause, carried out for the DHCP policy: a client powering on
(stale sessions dropped, reset_on_boot), an unknown PXE client adopted, iPXE told that no IPv6
router is coming; and the disks of clients logged out for a while parked."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from bootsrv import adopted
from bootsrv.clients import unknown_client
from bootsrv.config import StartupError
from bootsrv.dhcp.policy import Adopt, Effect, EndIpv6Wait, PoweringOn
from bootsrv.runtime.disks import open_client_disk
from snapshots.engine import SnapshotError
from target.stores.base import StoreError

if TYPE_CHECKING:
    from bootsrv.runtime.appliance import Appliance

log = logging.getLogger("bootsrv")
PARK_AFTER = 60.0  # seconds after a client's last logout before its disk files are closed


async def park_idle_disks(app: Appliance, idle: float = PARK_AFTER, every: float = 15.0) -> None:
    """Clients logged out for `idle` seconds get their files closed (a lab of thousands
    would otherwise hold two descriptors a client: its disk and its image)."""
    loop = asyncio.get_running_loop()
    since: dict[str, float] = {}
    while True:
        await asyncio.sleep(every)
        if app.server is None:
            continue
        online = {s.target_name for s in app.server.registry.sessions.values()}
        now = time.monotonic()
        for name, client in list(app.clients.items()):
            gate = app.stores.get(client.store_key)
            if gate is None or gate.parked or client.target_iqn in online or gate.held:
                since.pop(name, None)
                continue
            if now - since.setdefault(name, now) >= idle:
                since.pop(name, None)
                try:
                    await loop.run_in_executor(None, app.inventory.park, client)
                except StoreError as exc:
                    log.error("closing the idle disk of %s: %s", name, exc)


async def carry_out(app: Appliance, effects: list[Effect]) -> None:
    """What the DHCP policy asked for, off the event loop where it touches files."""
    loop = asyncio.get_running_loop()
    for effect in effects:
        if isinstance(effect, PoweringOn):
            await _powering_on(app, effect, loop)
        elif isinstance(effect, Adopt):
            await _adopt(app, effect, loop)
        elif isinstance(effect, EndIpv6Wait) and app.ra is not None:
            app.ra.advertise(effect.mac if effect.only_to_it else None)


async def _adopt(app: Appliance, effect: Adopt, loop: asyncio.AbstractEventLoop) -> None:
    """unknown_clients = an image: a new PXE client gets its own disk and target."""
    client = unknown_client(app.config, effect.mac)
    ok = False
    try:
        if client is None or app.policy is None:
            return
        try:
            store = await loop.run_in_executor(None, open_client_disk, app.config, client,
                                               app.images.base_for(client))
        except StartupError as exc:
            log.error("cannot make a disk for unknown client %s: %s", effect.mac, exc)
            return
        try:
            await loop.run_in_executor(None, adopted.add, app.config.server.state_dir, client.name,
                                       client.config.mac, client.config.image, effect.cause)
        except OSError as exc:  # not recorded: not served either (it would be lost at a restart)
            store.close()
            log.error("cannot record unknown client %s as adopted: %s", effect.mac, exc)
            return
        app.inventory.add_client(client, store)  # the policy sees it from now on
        await loop.run_in_executor(None, app.images.disk_remade, client.name)
        ok = True
        log.info("unknown PXE client %s adopted as %s (image %s), on %s", effect.mac, client.name,
                 client.config.image, effect.cause)
    finally:
        if app.policy is not None and app.policy.adoptions is not None:
            app.policy.adoptions.done(effect.mac, ok)


async def _powering_on(app: Appliance, effect: PoweringOn, loop: asyncio.AbstractEventLoop) -> None:
    """A client is in its boot firmware: its sessions are stale; reset_on_boot starts it again
    from its image. Never for an OS's own DHCP traffic (the policy sends no such effect)."""
    client = effect.client
    # The same DISCOVER again (same xid, no login to the disk since) is the firmware
    # repeating itself while it waits for offers: one power-on, one reset. Some firmware
    # uses the same xid at every boot, hence the logins.
    logins = app.server.registry.logins[client.target_iqn] if app.server is not None else 0
    if app.boot_attempts.get(client.name) == (effect.xid, logins):
        log.debug("%s: DISCOVER xid %#x again, the same power-on", client.name, effect.xid)
        return
    app.boot_attempts[client.name] = (effect.xid, logins)
    app.last_boot[client.name] = time.time()
    if client.name not in app.client_units or app.server is None:
        log.info("%s powering on (%s)", client.name, effect.cause)
        return
    images = app.images
    if images.editing(client.name) is not None:  # the maintenance client: its image's edit layer
        app.server.registry.drop_target(client.target_iqn)
        try:
            record = await loop.run_in_executor(None, images.boot_edit, client.name)
        except (StoreError, OSError) as exc:  # its own disk is served instead: never a client with none
            log.error("%s: cannot serve the edit layer of image %s: %s; it boots its own disk",
                      client.name, images.editing(client.name).name, exc)  # type: ignore[union-attr]
            record = None
        if record is not None and record.edit is not None:
            log.info("%s powering on into the edit of image %s (over version %d; its own disk is left as it is), "
                     "on %s", client.name, record.name, record.edit.base, effect.cause)
            return
    if not await loop.run_in_executor(None, images.resets_at_boot, client):
        log.info("%s powering on (%s)", client.name, effect.cause)
        return
    app.server.registry.drop_target(client.target_iqn)
    # On a worker: the reset swaps files under the gate; it gives up rather than wait
    # for a snapshot operation on this disk.
    try:
        base = await loop.run_in_executor(None, images.base_for, client)
        started_over = await loop.run_in_executor(None, app.backup.engine.restart_from, client.name, base)
    except (StoreError, SnapshotError, OSError) as exc:  # it boots the disk it has: never none
        log.error("%s powering on: its disk could not start again from its image: %s", client.name, exc)
        return
    images.disk_remade(client.name)
    if not started_over:
        log.warning("%s powering on during a snapshot operation on its disk: not reset this time (%s)",
                    client.name, effect.cause)
        return
    why = "reset_on_boot" if client.config.reset_on_boot else "on_image_update = reset"
    log.info("%s booted: its disk starts again from version %d of image %s (%s), on %s", client.name,
             images.record(client.config.image).current, client.config.image, why, effect.cause)
