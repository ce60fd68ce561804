"""Golden images on the test session's Ceph cluster (tests/support/ceph.py): a configuration
whose [[image]] is `rbd:POOL/NAME`, a golden image put into the cluster, and reads and writes
of RBD images and snapshots through librbd, for the checks that look at the cluster itself."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

from tests.support.ceph import CephCluster, run_client
from tests.support.netboot import TWO_CLIENTS


def ceph_section(cluster: CephCluster) -> str:
    return f"""
[ceph]
conf = "{cluster.conf}"
id = "{cluster.client_id}"
keyring = "{cluster.keyring}"
"""


def rbd_image_config(cluster: CephCluster, image: str, clients: dict[str, str], *, reset: tuple[str, ...] = (),
                     portal: str = "127.0.0.1:3260") -> str:
    """One [[image]] on rbd:POOL/IMAGE and a [[client]] per name -> MAC over it (`reset`: those
    with reset_on_boot)."""
    text = f"""
[server]
state_dir = "state"
[iscsi]
portals = ["{portal}"]
{ceph_section(cluster)}
[[image]]
name = "golden"
path = "rbd:{cluster.pool}/{image}"
"""
    for name, mac in clients.items():
        text += f"""
[[client]]
name = "{name}"
mac = "{mac}"
image = "golden"
{"reset_on_boot = true" if name in reset else ""}
"""
    return text


def import_image(cluster: CephCluster, source: Path, image: str, fmt: str = "raw") -> None:
    """Put a disk file into the cluster as rbd:POOL/IMAGE (qemu-img's own rbd driver writes it)."""
    run_client(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(source), cluster.qemu_url(image)], timeout=600)


def new_image(cluster: CephCluster, image: str, size: int) -> None:
    run_client(["rbd", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring", str(cluster.keyring),
                "create", "--size", f"{size >> 20}M", f"{cluster.pool}/{image}"])


def rbd_cli(cluster: CephCluster, *args: str) -> str:
    """The rbd tool as the test's client (its output)."""
    return run_client(["rbd", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring",
                       str(cluster.keyring), *args]).stdout


@contextlib.contextmanager
def _opened(cluster: CephCluster, spec: str, read_only: bool = True) -> Iterator[Any]:
    """rbd.Image of IMAGE[@SNAP] in the test pool."""
    import rbd
    name, _, snap = spec.partition("@")
    with cluster.ioctx() as ioctx, contextlib.closing(rbd.Image(ioctx, name, snapshot=snap or None,
                                                                read_only=read_only)) as image:
        yield image


def read(cluster: CephCluster, spec: str, offset: int, length: int) -> bytes:
    """Bytes of rbd:POOL/IMAGE[@SNAP] (spec without the pool: IMAGE[@SNAP])."""
    with _opened(cluster, spec) as image:
        return image.read(offset, length)


def size(cluster: CephCluster, spec: str) -> int:
    with _opened(cluster, spec) as image:
        return image.size()


def write(cluster: CephCluster, name: str, offset: int, data: bytes) -> None:
    with _opened(cluster, name, read_only=False) as image:
        image.write(data, offset)
        image.flush()


def parent(cluster: CephCluster, name: str) -> str | None:
    """POOL/IMAGE@SNAP the image is a clone of, or None."""
    import rbd
    with _opened(cluster, name) as image:
        try:
            pool, image_name, snap = image.parent_info()
        except rbd.ImageNotFound:
            return None
    return f"{pool}/{image_name}@{snap}"


def images(cluster: CephCluster) -> set[str]:
    import rbd
    with cluster.ioctx() as ioctx:
        return set(rbd.RBD().list(ioctx))


def snapshots(cluster: CephCluster, name: str) -> dict[str, bool]:
    """The image's snapshots: name -> protected."""
    with _opened(cluster, name) as image:
        return {s["name"]: image.is_protected_snap(s["name"]) for s in image.list_snaps()}


def client_ports(cluster: CephCluster) -> list[int]:
    """The host loopback ports a Ceph client talks to: the monitor's and each OSD's public ones."""
    dump = json.loads(run_client(["ceph", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring",
                                  str(cluster.keyring), "osd", "dump", "--format", "json"]).stdout)
    osd_ports = {int(a["addr"].rsplit(":", 1)[1]) for osd in dump["osds"] for a in osd["public_addrs"]["addrvec"]}
    return [int(cluster.mon_addr.rsplit(":", 1)[1]), *sorted(osd_ports)]


def forget_client_disks(cluster: CephCluster, *clients: str) -> None:
    """Remove the clients' clones (bootsrv.client.NAME) that an earlier test left in the session's
    pool: client disks are named for the client alone, and a test's clients start from nothing."""
    import rbd
    with cluster.ioctx() as ioctx:
        for client in clients:
            try:
                rbd.RBD().remove(ioctx, f"bootsrv.client.{client}")
            except rbd.ImageNotFound:
                pass


def watchers(cluster: CephCluster, name: str) -> int:
    """How many clients watch the image (a killed process's watch lasts until it times out)."""
    with _opened(cluster, name) as image:
        return len(list(image.watchers_list()))


def lab_image_config(cluster: CephCluster, image: str, node: str = "") -> str:
    """The classroom's network-boot configuration (three machines; ws02 resets at each boot) with
    its golden image on rbd:POOL/IMAGE, as node `node` when given."""
    return (TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"')
            .replace('path = "golden.vhd"', f'path = "rbd:{cluster.pool}/{image}"')
            + ceph_section(cluster)
            + '\n[[client]]\nname = "ws03"\nmac = "52:54:00:12:34:58"\nimage = "golden"\n'
            + (f'\n[node]\nname = "{node}"\n' if node else ""))
