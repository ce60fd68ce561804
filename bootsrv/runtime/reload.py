"""A configuration reload in two steps: `plan(old, new)` says what changes (pure, no I/O
beyond what the config objects hold), `apply` carries the plan out on the inventory.

What can change while serving: clients, disks and targets added, removed or changed. Other
sections (RESTART_SECTIONS) wait for a restart. A target over a changed disk is rebuilt too.
A changed thing is removed then added again; removals come before additions.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from bootsrv.clients import BootClient, boot_clients
from bootsrv.config import Config
from bootsrv.runtime.inventory import Inventory

RESTART_SECTIONS = ("server", "iscsi", "dhcp", "dns", "tftp_root", "http", "ceph", "node", "web")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    restart: list[str]  # sections that changed but only take effect at a restart
    targets_dropped: dict[str, str] = field(default_factory=dict)  # iqn -> "changed" / "removed"
    disks_dropped: dict[str, str] = field(default_factory=dict)
    clients_dropped: dict[str, str] = field(default_factory=dict)  # configured clients only
    snapshots_changed: bool = False
    disks_added: list[str] = field(default_factory=list)  # new or changed, in the new file's order
    targets_added: list[str] = field(default_factory=list)  # (re)built
    clients_added: list[BootClient] = field(default_factory=list)  # new or changed


def _verb(name: str, new: Container[str]) -> str:
    return "changed" if name in new else "removed"


def _images_changed(old: Config, new: Config) -> bool:
    """An image added is served at once (`image create`, `image import`); one removed or
    pointed at another file waits for a restart (clients are built on it)."""
    kept = {i.name: i for i in new.images}
    return any(kept.get(image.name) != image for image in old.images)


def plan(old: Config, new: Config) -> ReloadPlan:
    old_targets, new_targets = {t.iqn: t for t in old.targets}, {t.iqn: t for t in new.targets}
    old_disks, new_disks = {d.name: d for d in old.disks}, {d.name: d for d in new.disks}
    changed_disks = {name for name, disk in old_disks.items() if new_disks.get(name) != disk}
    old_clients = {c.name: c for c in old.clients}
    wanted = {c.name: c for c in boot_clients(new)}
    clients_dropped = {name: _verb(name, wanted) for name in sorted(old_clients)
                       if name not in wanted or wanted[name].config != old_clients[name]}
    return ReloadPlan(
        restart=[name for name in RESTART_SECTIONS if getattr(new, name) != getattr(old, name)]
        + (["images"] if _images_changed(old, new) else []),
        targets_dropped={iqn: _verb(iqn, new_targets) for iqn, target in old_targets.items()
                         if new_targets.get(iqn) != target or changed_disks & set(target.luns)},
        disks_dropped={name: _verb(name, new_disks) for name in old_disks if name in changed_disks},
        clients_dropped=clients_dropped,
        snapshots_changed=new.snapshots != old.snapshots,
        disks_added=[name for name in new_disks if name not in old_disks or name in changed_disks],
        targets_added=[iqn for iqn, target in new_targets.items()
                       if old_targets.get(iqn) != target or changed_disks & set(target.luns)],
        clients_added=[c for name, c in wanted.items() if name not in old_clients or name in clients_dropped])


def apply(changes: ReloadPlan, old: Config, new: Config, inventory: Inventory) -> list[str]:
    """Carry the plan out (on the event loop: sessions live there); what was done, for the log."""
    applied: list[str] = []
    for iqn, verb in changes.targets_dropped.items():
        inventory.remove_target(iqn)
        applied.append(f"target {iqn} {verb}")
    for name, verb in changes.disks_dropped.items():
        inventory.remove_disk(name)
        applied.append(f"disk {name} {verb}")
    for name, verb in changes.clients_dropped.items():
        inventory.remove_client(name)
        applied.append(f"client {name} {verb}")
    inventory.config = inventory.backup.config = new
    if changes.snapshots_changed:
        inventory.backup.engine.min_free = new.snapshots.min_free
        inventory.backup.start_schedules()
        applied.append("snapshot schedules and settings")
    for name in changes.disks_added:
        inventory.add_disk(new.disk(name))
        applied.append(f"disk {name} added")
    old_targets = {t.iqn for t in old.targets}
    for iqn in changes.targets_added:
        inventory.add_target(next(t for t in new.targets if t.iqn == iqn))
        if iqn not in old_targets:
            applied.append(f"target {iqn} added")
    for disk in new.disks:
        inventory.disk_access(disk.name)
    for client in changes.clients_added:
        if client.name not in inventory.clients:  # an adopted client of that name keeps its place
            inventory.add_client(client)
            applied.append(f"client {client.name} added")
    return applied
