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
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import MiB, bootsrv, cpu_seconds, free_port, rss_mib, start_tgtd, stop, tgt_target, wait_port  # noqa: E402

from tests.support.initiator import RawInitiator  # noqa: E402

BASE = "iqn.2026-11.lan.bootsrv"
IQN_TGT = "iqn.2026-11.lan.tgt:storm"
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


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float  # server CPU seconds
    rss: float  # peak server RSS, MiB


def storm(pid: int, readers: list[str], commands: list[str]) -> Run:
    """All readers at once, timed, with the server's CPU and peak RSS."""
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
    return Run(elapsed, cpu_seconds(pid) - cpu, max(peak))


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
    proc = bootsrv("serve", "--config", str(config))
    wait_port(port, proc)
    return proc, port


def bootsrv_readers(port: int, clients: int) -> list[str]:
    return [(f"driver=iscsi,transport=tcp,portal=127.0.0.1:{port},target={BASE}:ws{n:02d},lun=0,"
             f"initiator-name={BASE}:initiator.ws{n:02d},header-digest=none") for n in range(clients)]


def start_tgt(copies: list[Path]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc, adm = start_tgtd(port)
    for tid, copy in enumerate(copies, 1):
        tgt_target(adm, tid, f"{IQN_TGT}{tid}", copy)
    return proc, port


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


@dataclass
class StormResult:
    trace_mib: int
    runs: dict[int, tuple[Run, Run]] = field(default_factory=dict)  # clients -> (bootsrv, tgt)
    idle_rss_64: float = 0.0
    busy_64: Run | None = None

    def ratio(self, clients: int) -> float:
        ours, theirs = self.runs[clients]
        return theirs.seconds / ours.seconds


def measure(clients: list[int], golden_mib: int = 256, trace_mib: int = 256) -> StormResult:
    for tool in ("qemu-io", "tgtd", "tgtadm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (make bench installs it)")
    result = StormResult(trace_mib)
    work = Path(tempfile.mkdtemp(prefix="bootsrv-storm-"))
    try:
        size = golden_mib * MiB
        raw = work / "golden.raw"
        with open(raw, "wb") as handle:
            rng = random.Random(1)
            for _ in range(golden_mib):
                handle.write(rng.randbytes(MiB))
        golden = work / "golden.vhd"
        if bootsrv("disk", "convert", str(raw), str(golden), "--type", "dynamic", stdout=subprocess.DEVNULL).wait():
            raise SystemExit("bootsrv disk convert failed")
        commands = trace(size, trace_mib * MiB)
        copies = []
        for n in range(max(clients)):
            copy = work / f"copy{n}.raw"
            shutil.copyfile(raw, copy)
            copies.append(copy)
        for count in clients:
            proc, port = start_bootsrv(work, golden, count)
            try:
                ours = storm(proc.pid, bootsrv_readers(port, count), commands)
            finally:
                stop(proc)
            tproc, tport = start_tgt(copies[:count])
            try:
                theirs = storm(tproc.pid, tgt_readers(tport, count), commands)
            finally:
                stop(tproc)
            result.runs[count] = (ours, theirs)
        proc, port = start_bootsrv(work, golden, 64)
        try:
            result.idle_rss_64 = idle_rss(port, 64, proc.pid)
            result.busy_64 = storm(proc.pid, bootsrv_readers(port, 64), commands)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def print_table(result: StormResult) -> None:
    print(f"boot storm: each client reads {result.trace_mib} MiB (128 KiB requests, runs of 1-8 MiB, random "
          "seeks); servers' CPU s/GB and peak RSS")
    print(f"{'clients':>8}  {'bootsrv (diff VHD over golden)':>40}  {'tgt 1.0.85 (raw copies)':>40}  ratio")
    for clients, runs in result.runs.items():
        moved = clients * result.trace_mib * MiB
        cells = [f"{r.seconds:6.1f} s {moved / r.seconds / 1e6:6.0f} MB/s {r.cpu / (moved / 1e9):5.1f} cpu-s/GB "
                 f"{r.rss:5.0f} MiB" for r in runs]
        print(f"{clients:>8}  {cells[0]:>40}  {cells[1]:>40}  {result.ratio(clients):.2f}x")
    busy = result.busy_64
    assert busy is not None
    print(f"bootsrv RSS with 64 sessions: idle {result.idle_rss_64:.0f} MiB, busy (64 readers) peak {busy.rss:.0f} MiB "
          f"({busy.seconds:.1f} s, {64 * result.trace_mib * MiB / busy.seconds / 1e6:.0f} MB/s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--golden-mib", type=int, default=256)
    parser.add_argument("--trace-mib", type=int, default=256, help="what each client reads")
    args = parser.parse_args()
    print_table(measure(args.clients, args.golden_mib, args.trace_mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
