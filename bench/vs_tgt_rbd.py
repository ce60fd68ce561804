#!/usr/bin/env python3
"""bootsrv beside tgt's own RBD backing store (tgt-rbd), on one throw-away Ceph cluster,
in one run, through one initiator (qemu-img bench, depth 32).

1 MiB sequential read/write and 4 KiB random read/write. The cluster is tests/support/ceph.py's
(one monitor, one OSD on a sparse file, loopback). Each server gets its own image of the same
size, filled the same way (`rbd bench` writes every object, so no read is of a hole that librbd
answers without asking an OSD): one image each, because two writers on one image would pass
its exclusive lock back and forth on every write, which measures the lock, not the server.
Rounds alternate between the servers, as in vs_tgt.py.

tgtd runs in the foreground as our child with `--bstype rbd --bsopts conf=...;id=...` (tgt's
bs_rbd reads that ceph.conf and finds the client's keyring through it). Its ceph.conf adds
`rbd_cache = false` under [client]: bootsrv runs librbd without its cache (an acknowledged
write is on the OSDs, so FUA and SYNCHRONIZE CACHE cost nothing), and a cache on one side only
would compare a cache with a data path.

    python bench/vs_tgt_rbd.py [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MiB, free_port, start_tgtd, stop, tgt_target  # noqa: E402
from vs_tgt import Server, Workload, print_table, ratio, run_rounds, start_bootsrv  # noqa: E402

from tests.support import ceph  # noqa: E402  (common put the checkout on the path)

IQN_TGT = "iqn.2026-11.lan.tgt:rbd-bench"
TGT_RBD = "tgt-rbd 1.0.85"
BOOTSRV_RBD = "bootsrv rbd"
IMAGES = {BOOTSRV_RBD: "bench-bootsrv", TGT_RBD: "bench-tgt"}

# Fewer requests than vs_tgt.py's: every one crosses to an OSD on the same two cores.
WORKLOADS = [
    Workload("1M seq read", MiB, 1000, False, True),
    Workload("1M seq write", MiB, 1000, True, True),
    Workload("4K rand read", 4096, 20000, False, False),
    Workload("4K rand write", 4096, 20000, True, False),
]


def missing() -> str | None:
    """Why this bench cannot run here (None: it can)."""
    why = ceph.missing()
    if why is None and not Path("/usr/lib/tgt/backing-store/bs_rbd.so").exists():
        why = "tgt's RBD backing store is not installed (Debian package tgt-rbd)"
    if why is None and shutil.which("tgtd") is None:
        why = "tgtd is not installed (Debian package tgt)"
    return why


def fill(cluster: ceph.CephCluster, image: str, size_mib: int) -> None:
    """A new image with every object written (4 MiB sequential writes, 16 in flight)."""
    rbd = ["rbd", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring", str(cluster.keyring)]
    ceph.run_client(rbd + ["create", "--size", f"{size_mib}M", f"{cluster.pool}/{image}"])
    ceph.run_client(rbd + ["bench", "--io-type", "write", "--io-size", "4M", "--io-threads", "16",
                           "--io-pattern", "seq", "--io-total", f"{size_mib}M", f"{cluster.pool}/{image}"],
                    timeout=1200)


def start_bootsrv_rbd(cluster: ceph.CephCluster, workdir: Path) -> Server:
    section = f"""[ceph]
conf = "{cluster.conf}"
id = "{cluster.client_id}"
keyring = "{cluster.keyring}"
"""
    return start_bootsrv(BOOTSRV_RBD, f"rbd:{cluster.pool}/{IMAGES[BOOTSRV_RBD]}", workdir, section)


def start_tgt_rbd(cluster: ceph.CephCluster, workdir: Path) -> Server:
    conf = workdir / "tgt-ceph.conf"
    # The keyring by name: a conf file not called ceph.conf changes $cluster in the default path.
    conf.write_text(cluster.conf.read_text() + f"\n[client]\nrbd_cache = false\nkeyring = {cluster.keyring}\n")
    port = free_port()
    proc, adm = start_tgtd(port, env=ceph.clean_env())
    try:
        tgt_target(adm, 1, IQN_TGT, f"{cluster.pool}/{IMAGES[TGT_RBD]}",
                   ("--bstype", "rbd", "--bsopts", f"conf={conf};id={cluster.client_id}"))
    except subprocess.CalledProcessError:
        stop(proc)
        raise
    return Server(TGT_RBD, proc, f"127.0.0.1:{port}", IQN_TGT, 1)


def measure(size_mib: int = 1024, rounds: int = 3) -> list[Server]:
    """Every workload `rounds` times on both servers, taking turns; tgt-rbd last (the reference)."""
    disk_bytes = size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="bootsrv-rbd-bench-") as tmp:
        workdir = Path(tmp)
        with ceph.ceph_cluster(workdir / "ceph") as cluster:
            for image in IMAGES.values():
                fill(cluster, image, size_mib)
            servers: list[Server] = []
            try:
                servers.append(start_bootsrv_rbd(cluster, workdir))
                servers.append(start_tgt_rbd(cluster, workdir))
                run_rounds(servers, WORKLOADS, rounds, disk_bytes)
            finally:
                for server in servers:
                    stop(server.proc)
    return servers


def ratios(servers: list[Server]) -> list[tuple[str, float]]:
    """(workload, bootsrv/tgt-rbd) for each workload."""
    return [(work.name, ratio(servers, BOOTSRV_RBD, work.name)) for work in WORKLOADS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of each RBD image")
    parser.add_argument("--rounds", type=int, default=3, help="runs per workload (the median counts)")
    args = parser.parse_args()
    why = missing()
    if why:
        print(f"skipped: {why}")
        return 0
    servers = measure(args.size_mib, args.rounds)
    print_table(servers, WORKLOADS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
