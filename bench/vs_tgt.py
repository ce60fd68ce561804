#!/usr/bin/env python3
"""bootsrv beside tgt, same machine, same backing file, same initiator (qemu-img bench).

Prints MB/s and IOPS for 1 MiB sequential read/write and 4 KiB random
read/write at queue depth 32, and the ratio bootsrv/tgt. tgtd runs with a
private control port so it never touches a system tgt.

    python bench/vs_tgt.py [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IQN_BOOTSRV = "iqn.2026-11.lan.bootsrv:bench"
IQN_TGT = "iqn.2026-11.lan.tgt:bench"
MiB = 1 << 20

WORKLOADS = [  # name, request size, count, write, sequential
    ("1M seq read", "1M", 2000, False, True),
    ("1M seq write", "1M", 2000, True, True),
    ("4K rand read", "4k", 60000, False, False),
    ("4K rand write", "4k", 60000, True, False),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start_bootsrv(image: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = workdir / f"bootsrv-{image.stem}.toml"
    config.write_text(f"""
[server]
state_dir = "{workdir / 'state'}"
log_level = "warning"
[iscsi]
portals = ["127.0.0.1:{port}"]
[[disk]]
name = "bench"
path = "{image}"
[[target]]
iqn = "{IQN_BOOTSRV}"
luns = ["bench"]
""")
    proc = subprocess.Popen([sys.executable, "-m", "bootsrv", "serve", "--config", str(config)],
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    wait_port(port, proc)
    return proc, f"iscsi://127.0.0.1:{port}/{IQN_BOOTSRV}/0"


def start_tgt(image: Path) -> tuple[subprocess.Popen, str, int]:
    port, control = free_port(), free_port() % 10000 + 20000
    proc = subprocess.Popen(["tgtd", "-f", "-C", str(control), "--iscsi", f"portal=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    adm = ["tgtadm", "-C", str(control), "--lld", "iscsi"]
    subprocess.run(adm + ["--op", "new", "--mode", "target", "--tid", "1", "-T", IQN_TGT], check=True)
    subprocess.run(adm + ["--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", str(image)],
                   check=True)
    subprocess.run(adm + ["--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"], check=True)
    return proc, f"iscsi://127.0.0.1:{port}/{IQN_TGT}/1", control


def qemu_bench(url: str, size: str, count: int, write: bool, sequential: bool, disk_bytes: int) -> float:
    step = size if sequential else None
    cmd = ["qemu-img", "bench", "-f", "raw", "-d", "32", "-c", str(count), "-s", size]
    if step:
        cmd += ["-S", step]
    else:
        # qemu-img bench has no random mode; a large odd stride scatters requests over the disk.
        cmd += ["-S", str(((disk_bytes // count) // 4096 | 1) * 4096 * 7 % (disk_bytes // 2) or 4096)]
    if write:
        cmd += ["-w", "--pattern", "0x5a"]
    # Same digest setting on both sides (tgt never offers digests; we would take
    # CRC32C from qemu's default "None,CRC32C" offer): compare the data paths.
    match = re.match(r"iscsi://([^/]+)/([^/]+)/(\d+)", url)
    assert match, url
    portal, iqn, lun = match.groups()
    opts = f"driver=iscsi,transport=tcp,portal={portal},target={iqn},lun={lun},header-digest=none"
    cmd = [c for c in cmd if c not in ("-f", "raw")] + ["--image-opts"]
    out = subprocess.run(cmd + [opts], capture_output=True, text=True, timeout=600)
    match = re.search(r"Run completed in ([\d.]+) seconds", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"qemu-img bench failed on {url}:\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bootsrv_disk(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bootsrv", "disk", *args], check=True, cwd=REPO,
                   env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="backing file size (the golden image's too)")
    parser.add_argument("--rounds", type=int, default=3, help="best of N runs per workload")
    parser.add_argument("--no-vhd", action="store_true", help="raw only")
    args = parser.parse_args()
    disk_bytes = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="bootsrv-bench-") as tmp:
        workdir = Path(tmp)
        image = workdir / "bench.img"
        with open(image, "wb") as handle:  # real data, so neither side reads holes
            block = os.urandom(MiB)
            for _ in range(args.size_mib):
                handle.write(block)
        servers: list[tuple[str, object]] = [("bootsrv raw", lambda: start_bootsrv(image, workdir))]
        if not args.no_vhd:
            dynamic, golden, child = workdir / "dynamic.vhd", workdir / "golden.vhd", workdir / "child.vhd"
            bootsrv_disk("convert", str(image), str(dynamic), "--type", "dynamic")
            bootsrv_disk("convert", str(image), str(golden), "--type", "dynamic")
            bootsrv_disk("create", str(child), "--parent", str(golden))
            servers += [("bootsrv dynamic VHD", lambda: start_bootsrv(dynamic, workdir)),
                        ("bootsrv differencing VHD", lambda: start_bootsrv(child, workdir))]
        servers.append(("tgt 1.0.85 raw", lambda: start_tgt(image)[:2]))
        results: dict[str, dict[str, float]] = {}
        for name, starter in servers:
            proc, url = starter()  # type: ignore[operator]
            try:
                for workload, size, count, write, sequential in WORKLOADS:
                    best = min(qemu_bench(url, size, count, write, sequential, disk_bytes)
                               for _ in range(args.rounds))
                    results.setdefault(workload, {})[name] = best
            finally:
                stop(proc)
    names = [name for name, _ in servers]
    print(f"{'qemu-img bench, depth 32':24}" + "".join(f"{n:>26}" for n in names))
    for workload, size, count, write, sequential in WORKLOADS:
        nbytes = count * (MiB if size == "1M" else 4096)
        cells = []
        theirs = results[workload][names[-1]]
        for name in names:
            seconds = results[workload][name]
            value, unit = (nbytes / seconds / 1e6, "MB/s") if size == "1M" else (count / seconds, "IOPS")
            ratio = f" ({theirs / seconds:.2f}x)" if name != names[-1] else ""
            cells.append(f"{value:>8.0f} {unit}{ratio:>9}")
        print(f"{workload:24}" + "".join(f"{c:>26}" for c in cells))
    print("ratios: bootsrv / tgt on the same machine, same run (higher is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
