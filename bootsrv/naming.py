"""Every name the appliance derives from another, written once: store keys, target and
initiator names, reservation files, adopted clients' names and disk files.

Pure string and path functions with no imports from the rest of bootsrv, so that the
config package and the runtime can both use them without a cycle. Changing one changes
what is on disk (reservation files, client disks) and what initiators are told: these
are part of the on-disk and on-wire format.
"""

from __future__ import annotations

import re
from pathlib import Path


def client_store_key(client: str) -> str:
    """The key of a client's disk among the appliance's stores (disks use their own names)."""
    return f"client:{client}"


def client_target_iqn(base_iqn: str, client: str) -> str:
    return f"{base_iqn}:{client}"


def client_initiator_iqn(base_iqn: str, client: str) -> str:
    """Handed out in DHCP option 203; the only initiator the client's target admits."""
    return f"{base_iqn}:initiator.{client}"


def client_disk_path(state_dir: Path, client: str, image: Path | None = None) -> Path:
    """A client's differencing disk over its image; for an image on RBD (rbd:POOL/NAME), a clone
    in the image's pool, named for the client alone, so every node of a fleet finds the same disk."""
    if image is not None and str(image).startswith("rbd:"):
        pool = str(image).removeprefix("rbd:").partition("/")[0]
        return Path(f"rbd:{pool}/bootsrv.client.{client}")
    return state_dir / "clients" / f"{client}.vhd"


def adopted_name(mac: str) -> str:
    """The name of a client adopted by DHCP (dhcp.unknown_clients), from its MAC."""
    return "pc-" + mac.replace(":", "")


def client_reservations(state_dir: Path, client: str) -> Path:
    """Persistent reservations (with APTPL) outlive restarts: one file per target and disk."""
    return _reservations(state_dir, f"client-{client}")


def disk_reservations(state_dir: Path, target_iqn: str, disk: str) -> Path:
    return _reservations(state_dir, f"{target_iqn.replace(':', '_')}@{disk}")


def _reservations(state_dir: Path, name: str) -> Path:
    return state_dir / "reservations" / f"{name}.json"


def snapshot_mount_iqn(base_iqn: str, disk: str, snap_id: int) -> str:
    """The read-only target a mounted snapshot is served as."""
    return f"{base_iqn}:snap.{re.sub(r'[^a-z0-9.-]', '-', disk.lower())}.{snap_id}"
