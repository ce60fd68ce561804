"""The RBD image the conformance comparison serves: made with the `rbd` CLI and set, per image,
to skip the partial pieces of a discard, so that an UNMAP that still reads zeros shows the
store's zeroing does not hang on the connection's settings (librbd takes an image's
settings over the client's)."""

from __future__ import annotations

from tests.support.ceph import CephCluster, run_client

# what a pool or an image may set; a plain librbd discard then leaves old data in a partial object
COARSE_DISCARD = {"rbd_skip_partial_discard": "true", "rbd_discard_granularity_bytes": "65536"}


def rbd_cli(cluster: CephCluster, *args: str) -> str:
    """The `rbd` tool as the tests' client of this cluster."""
    return run_client(["rbd", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring",
                       str(cluster.keyring), *args]).stdout


def coarse_discard_image(cluster: CephCluster, image: str, size: str) -> None:
    """A new image (the rbd tool's default features: layering, exclusive-lock, object-map,
    fast-diff) whose own settings make discards skip partial objects."""
    name = f"{cluster.pool}/{image}"
    rbd_cli(cluster, "create", "--size", size, name)
    for key, value in COARSE_DISCARD.items():
        rbd_cli(cluster, "config", "image", "set", name, key, value)
