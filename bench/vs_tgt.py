#!/usr/bin/env python3
"""bootsrv beside tgt, same machine, same data, same initiator (qemu-img bench, depth 32).

1 MiB sequential read/write and 4 KiB random read/write, on a raw image, a
dynamic VHD and a differencing VHD over a golden image (tgt serves the raw
image: it has no VHD). Every server runs for the whole benchmark and rounds
alternate between them, so a slow minute of the machine hurts everyone alike.
Prints MB/s or IOPS (median round), server CPU seconds per GB moved, and the
ratio bootsrv/tgt. tgtd runs with a private control port.

    python bench/vs_tgt.py [--size-mib 1024] [--rounds 3] [--no-vhd]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MiB, bootsrv, cpu_seconds, free_port, start_tgtd, stop, tgt_target, wait_port  # noqa: E402

IQN_BOOTSRV = "iqn.2026-11.lan.bootsrv:bench"
IQN_TGT = "iqn.2026-11.lan.tgt:bench"
TGT = "tgt 1.0.85 raw"


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    count: int
    write: bool
    sequential: bool

    @property
    def bytes(self) -> int:
        return self.size * self.count


WORKLOADS = [
    Workload("1M seq read", MiB, 2000, False, True),
    Workload("1M seq write", MiB, 2000, True, True),
    Workload("4K rand read", 4096, 60000, False, False),
    Workload("4K rand write", 4096, 60000, True, False),
]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    portal: str
    iqn: str
    lun: int
    rounds: dict[str, list[float]] = field(default_factory=dict)  # seconds of each round per workload
    cpu: dict[str, float] = field(default_factory=dict)  # server CPU seconds over all rounds
    moved: dict[str, int] = field(default_factory=dict)  # bytes over all rounds

    def seconds(self, workload: str) -> float:
        """The median round: one lucky or unlucky minute of the machine decides nothing."""
        return statistics.median(self.rounds[workload])


def start_bootsrv(name: str, image: Path | str, workdir: Path, extra: str = "") -> Server:
    """bootsrv serving `image` (a file, or a store path such as rbd:POOL/IMAGE) as LUN 0;
    `extra`: more TOML sections (e.g. [ceph])."""
    port = free_port()
    stem = Path(str(image)).stem
    config = workdir / f"bootsrv-{stem}.toml"
    config.write_text(f"""
[server]
state_dir = "{workdir / ('state-' + stem)}"
log_level = "warning"
[iscsi]
portals = ["127.0.0.1:{port}"]
{extra}
[[disk]]
name = "bench"
path = "{image}"
[[target]]
iqn = "{IQN_BOOTSRV}"
luns = ["bench"]
""")
    proc = bootsrv("serve", "--config", str(config))
    wait_port(port, proc)
    return Server(name, proc, f"127.0.0.1:{port}", IQN_BOOTSRV, 0)


def start_tgt(image: Path) -> Server:
    port = free_port()
    proc, adm = start_tgtd(port)
    tgt_target(adm, 1, IQN_TGT, image)
    return Server(TGT, proc, f"127.0.0.1:{port}", IQN_TGT, 1)


def qemu_bench(server: Server, work: Workload, disk_bytes: int) -> float:
    size = "1M" if work.size == MiB else str(work.size)
    cmd = ["qemu-img", "bench", "-d", "32", "-c", str(work.count), "-s", size]
    if work.sequential:
        cmd += ["-S", size]
    else:
        # qemu-img bench has no random mode; a large odd stride scatters requests over the disk.
        cmd += ["-S", str(((disk_bytes // work.count) // 4096 | 1) * 4096 * 7 % (disk_bytes // 2) or 4096)]
    if work.write:
        cmd += ["-w", "--pattern", "0x5a"]
    # Same digest setting on both sides (tgt never offers digests; we would take
    # CRC32C from qemu's default "None,CRC32C" offer): compare the data paths.
    opts = (f"driver=iscsi,transport=tcp,portal={server.portal},target={server.iqn},lun={server.lun},"
            "header-digest=none")
    out = subprocess.run(cmd + ["--image-opts", opts], capture_output=True, text=True, timeout=600)
    match = re.search(r"Run completed in ([\d.]+) seconds", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"qemu-img bench failed on {server.name}:\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def measure(size_mib: int = 1024, rounds: int = 3, vhd: bool = True) -> list[Server]:
    """Run every workload `rounds` times on every server, servers taking turns."""
    disk_bytes = size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="bootsrv-bench-") as tmp:
        workdir = Path(tmp)
        image = workdir / "bench.img"
        with open(image, "wb") as handle:  # real data, so neither side reads holes
            block = os.urandom(MiB)
            for _ in range(size_mib):
                handle.write(block)
        servers = [start_bootsrv("bootsrv raw", image, workdir)]
        try:
            if vhd:
                dynamic, golden, child = workdir / "dynamic.vhd", workdir / "golden.vhd", workdir / "child.vhd"
                for args in (("convert", str(image), str(dynamic), "--type", "dynamic"),
                             ("convert", str(image), str(golden), "--type", "dynamic"),
                             ("create", str(child), "--parent", str(golden))):
                    if bootsrv("disk", *args, stdout=subprocess.DEVNULL).wait():
                        raise SystemExit(f"bootsrv disk {' '.join(args)} failed")
                servers += [start_bootsrv("bootsrv dynamic VHD", dynamic, workdir),
                            start_bootsrv("bootsrv differencing VHD", child, workdir)]
            servers.append(start_tgt(image))
            run_rounds(servers, WORKLOADS, rounds, disk_bytes)
        finally:
            for server in servers:
                stop(server.proc)
    return servers


def run_rounds(servers: list[Server], workloads: list[Workload], rounds: int, disk_bytes: int) -> None:
    """Each workload `rounds` times on every server, servers taking turns; records seconds and CPU."""
    for work in workloads:
        for _ in range(rounds):
            for server in servers:
                cpu = cpu_seconds(server.proc.pid)
                seconds = qemu_bench(server, work, disk_bytes)
                server.cpu[work.name] = server.cpu.get(work.name, 0.0) + cpu_seconds(server.proc.pid) - cpu
                server.moved[work.name] = server.moved.get(work.name, 0) + work.bytes
                server.rounds.setdefault(work.name, []).append(seconds)


def ratio(servers: list[Server], name: str, workload: str) -> float:
    """bootsrv/tgt: how many times tgt's speed `name` reached (median rounds)."""
    ours = next(s for s in servers if s.name == name)
    return servers[-1].seconds(workload) / ours.seconds(workload)


def print_table(servers: list[Server], workloads: list[Workload] = WORKLOADS) -> None:
    """One column per server, the last one the reference the others' ratios are to."""
    print(f"{'qemu-img bench, depth 32':16}" + "".join(f"{s.name:>27}" for s in servers))
    for work in workloads:
        cells = []
        for server in servers:
            seconds = server.seconds(work.name)
            value, unit = (work.bytes / seconds / 1e6, "MB/s") if work.size == MiB else (work.count / seconds, "IOPS")
            shown = f" ({ratio(servers, server.name, work.name):.2f}x)" if server is not servers[-1] else ""
            cells.append(f"{value:>6.0f} {unit}{shown:>8}")
        print(f"{work.name:16}" + "".join(f"{c:>27}" for c in cells))
    print(f"{'CPU s per GB':16}" + "".join(
        f"{' '.join(f'{s.cpu[w.name] / (s.moved[w.name] / 1e9):.1f}' for w in workloads):>27}" for s in servers))
    print("ratios: bootsrv/tgt, median of the rounds, same machine, same run (higher is better); CPU per GB: "
          "the server process, in workload order")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="backing file size (the golden image's too)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per workload (the median counts)")
    parser.add_argument("--no-vhd", action="store_true", help="raw only")
    args = parser.parse_args()
    print_table(measure(args.size_mib, args.rounds, not args.no_vhd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
