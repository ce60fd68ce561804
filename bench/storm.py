#!/usr/bin/env python3
"""Boot storm: N diskless clients read a boot-like trace at once, bootsrv beside tgt.

bootsrv serves each client its own differencing VHD over one shared golden
image (as in a lab); tgt serves N raw copies of the golden image. Every client
is a qemu-io process (libiscsi, queue depth 1, as a booting OS mostly is)
reading the same trace: sequential runs of 128 KiB requests with random seeks,
--trace-mib (256) in all. Prints total time, aggregate MB/s, server CPU seconds per GB
moved and server RSS, then the ratios bootsrv/tgt. Also RSS with 64 idle
logged-in sessions.

    python bench/storm.py [--clients 16 32] [--golden-mib 256]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from vs_tgt import free_port, stop, wait_port  # noqa: E402

from tests.e2e.test_wire import RawInitiator  # noqa: E402

BASE = "iqn.2026-11.lan.bootsrv"
IQN_TGT = "iqn.2026-11.lan.tgt:storm"
MiB = 1 << 20
REQUEST = 128 * 1024


def trace(disk_bytes: int, total: int, seed: int = 7) -> list[str]:
    """qemu-io commands: sequential runs (1-8 MiB) of 128 KiB reads from random places."""
    rng, commands, done = random.Random(seed), [], 0
    while done < total:
        run = rng.randint(8, 64) * REQUEST
        start = rng.randrange(0, (disk_bytes - run) // REQUEST) * REQUEST
        for offset in range(start, start + run, REQUEST):
            commands += ["-c", f"read {offset} {REQUEST}"]
        done += run
    return commands


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def storm(pid: int, readers: list[str], commands: list[str]) -> tuple[float, float, float]:
    """(seconds, server CPU seconds, peak server RSS MiB) for all readers at once."""
    peak, stop_sampling = [rss_mib(pid)], threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.2):
            peak.append(rss_mib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu, started = cpu_seconds(pid), time.monotonic()
    procs = [subprocess.Popen(["qemu-io", "-r", "--image-opts", opts, *commands], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for opts in readers]
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode:
            raise SystemExit(f"qemu-io failed: {err.decode(errors='replace')}")
    elapsed = time.monotonic() - started
    stop_sampling.set()
    sampler.join()
    return elapsed, cpu_seconds(pid) - cpu, max(peak)


def start_bootsrv(work: Path, golden: Path, clients: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    state = work / f"state-{clients}"
    shutil.rmtree(state, ignore_errors=True)
    lines = [f'[server]\nstate_dir = "{state}"\nlog_level = "warning"', f'[iscsi]\nportals = ["127.0.0.1:{port}"]',
             f'[[image]]\nname = "golden"\npath = "{golden}"']
    lines += [f'[[client]]\nname = "ws{n:02d}"\nmac = "52:54:00:00:{n // 256:02x}:{n % 256:02x}"\nimage = "golden"'
              for n in range(clients)]
    config = work / f"storm-{clients}.toml"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "bootsrv", "serve", "--config", str(config)], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    wait_port(port, proc)
    return proc, port


def bootsrv_readers(port: int, clients: int) -> list[str]:
    return [(f"driver=iscsi,transport=tcp,portal=127.0.0.1:{port},target={BASE}:ws{n:02d},lun=0,"
             f"initiator-name={BASE}:initiator.ws{n:02d},header-digest=none") for n in range(clients)]


def start_tgt(copies: list[Path]) -> tuple[subprocess.Popen, int, int]:
    port, control = free_port(), free_port() % 10000 + 20000
    proc = subprocess.Popen(["tgtd", "-f", "-C", str(control), "--iscsi", f"portal=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    adm = ["tgtadm", "-C", str(control), "--lld", "iscsi"]
    for tid, copy in enumerate(copies, 1):
        subprocess.run(adm + ["--op", "new", "--mode", "target", "--tid", str(tid), "-T", f"{IQN_TGT}{tid}"],
                       check=True)
        subprocess.run(adm + ["--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", "1", "-b",
                              str(copy)], check=True)
        subprocess.run(adm + ["--op", "bind", "--mode", "target", "--tid", str(tid), "-I", "ALL"], check=True)
    return proc, port, control


def tgt_readers(port: int, clients: int) -> list[str]:
    return [(f"driver=iscsi,transport=tcp,portal=127.0.0.1:{port},target={IQN_TGT}{n + 1},lun=1,"
             "header-digest=none") for n in range(clients)]


def idle_rss(port: int, clients: int, pid: int) -> float:
    sessions = []
    try:
        for n in range(clients):
            client = RawInitiator(port)
            client.login(digests=False, target=f"{BASE}:ws{n:02d}", initiator=f"{BASE}:initiator.ws{n:02d}")
            sessions.append(client)
        time.sleep(1)
        return rss_mib(pid)
    finally:
        for client in sessions:
            client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--golden-mib", type=int, default=256)
    parser.add_argument("--trace-mib", type=int, default=256, help="what each client reads")
    args = parser.parse_args()
    for tool in ("qemu-io", "tgtd", "tgtadm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (make bench installs it)")
    work = Path(tempfile.mkdtemp(prefix="bootsrv-storm-"))
    try:
        size = args.golden_mib * MiB
        raw = work / "golden.raw"
        with open(raw, "wb") as handle:
            rng = random.Random(1)
            for _ in range(args.golden_mib):
                handle.write(rng.randbytes(MiB))
        golden = work / "golden.vhd"
        subprocess.run([sys.executable, "-m", "bootsrv", "disk", "convert", str(raw), str(golden), "--type",
                        "dynamic"], check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       stdout=subprocess.DEVNULL)
        commands = trace(size, args.trace_mib * MiB)
        copies = []
        for n in range(max(args.clients)):
            copy = work / f"copy{n}.raw"
            shutil.copyfile(raw, copy)
            copies.append(copy)
        print(f"boot storm: each client reads {args.trace_mib} MiB (128 KiB requests, runs of 1-8 MiB, random seeks), "
              f"golden image {args.golden_mib} MiB; servers' CPU s/GB and peak RSS")
        print(f"{'clients':>8}  {'bootsrv (diff VHD over golden)':>40}  {'tgt 1.0.85 (raw copies)':>40}  ratio")
        for clients in args.clients:
            moved = clients * args.trace_mib * MiB
            proc, port = start_bootsrv(work, golden, clients)
            try:
                ours = storm(proc.pid, bootsrv_readers(port, clients), commands)
            finally:
                stop(proc)
            tproc, tport, _ = start_tgt(copies[:clients])
            try:
                theirs = storm(tproc.pid, tgt_readers(tport, clients), commands)
            finally:
                stop(tproc)
            cells = [f"{t:6.1f} s {moved / t / 1e6:6.0f} MB/s {cpu / (moved / 1e9):5.1f} cpu-s/GB {rss:5.0f} MiB"
                     for t, cpu, rss in (ours, theirs)]
            print(f"{clients:>8}  {cells[0]:>40}  {cells[1]:>40}  {theirs[0] / ours[0]:.2f}x")
        proc, port = start_bootsrv(work, golden, 64)
        try:
            idle = idle_rss(port, 64, proc.pid)
            busy = storm(proc.pid, bootsrv_readers(port, 64), commands)
        finally:
            stop(proc)
        print(f"bootsrv RSS with 64 sessions: idle {idle:.0f} MiB, busy (64 readers) peak {busy[2]:.0f} MiB "
              f"({busy[0]:.1f} s, {64 * args.trace_mib * MiB / busy[0] / 1e6:.0f} MB/s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
