#!/usr/bin/env python3
"""DHCP load: perfdhcp against bootsrv and dnsmasq, same namespaces, 1000 known clients.

Two private network namespaces joined by a veth pair: the server's end is
10.77.0.1/16, perfdhcp runs in the client's namespace (10.77.0.2/16). Both
servers know the same 1000 MACs and hand out 10.77.1.0-10.77.4.255. Rates rise
step by step, the servers alternate at each rate (a server that dropped at one
rate twice is not tried at higher ones), and each run starts from a fresh lease
database. "Drop-free" means perfdhcp saw a drops ratio below 0.1%
for both DISCOVER and REQUEST. Optionally (--iscsi) a 4 KiB read loop on an
iSCSI disk of the same bootsrv measures its p99 latency with and without the
DHCP load. Run as root.

    python bench/dhcp.py [--quick] [--iscsi]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import REPO  # noqa: E402  (first: it puts this checkout on sys.path)

from target.stores.vhd.create import create_dynamic  # noqa: E402
from demo.labnet import remove_netns, stop_processes  # noqa: E402

CLIENTS = 1000
POOL = ("10.77.1.0", "10.77.4.255")
DROP_FREE = 0.001  # drops ratio below 0.1% counts as drop-free
IQN_DISK = "iqn.2026-11.lan.bootsrv:benchdisk"
RATES = [50, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 3200]
QUICK_RATES = [100, 200, 400]


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def macs() -> list[str]:
    return [f"02:77:00:00:{i >> 8:02x}:{i & 0xff:02x}" for i in range(CLIENTS)]


def make_netns(tag: str) -> tuple[str, str]:
    server, client = f"bdhcp-srv-{tag}", f"bdhcp-cli-{tag}"
    sh("ip", "netns", "add", server)
    try:
        sh("ip", "netns", "add", client)
        for ns in (server, client):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", server, "link", "add", "vsrv", "type", "veth", "peer", "name", "vcli", "netns", client)
        sh("ip", "-n", server, "addr", "add", "10.77.0.1/16", "dev", "vsrv")
        sh("ip", "-n", client, "addr", "add", "10.77.0.2/16", "dev", "vcli")
        sh("ip", "-n", server, "link", "set", "vsrv", "up")
        sh("ip", "-n", client, "link", "set", "vcli", "up")
    except subprocess.CalledProcessError:
        remove_netns(client)
        remove_netns(server)
        raise
    return server, client


def bootsrv_config(with_disk: bool) -> str:
    lines = ['[server]', 'state_dir = "state"', '',
             '[iscsi]', 'portals = ["10.77.0.1:3260"]', '',
             '[dhcp]', 'mode = "full"', 'interface = "vsrv"', f'pool = "{POOL[0]}-{POOL[1]}"',
             'router = "10.77.0.1"', 'domain = "lab"', 'lease_time = "1h"', '',
             '[[image]]', 'name = "golden"', 'path = "golden.vhd"', '']
    if with_disk:
        lines += ['[[disk]]', 'name = "benchdisk"', 'path = "disk.raw"', '',
                  '[[target]]', f'iqn = "{IQN_DISK}"', 'luns = ["benchdisk"]', '']
    for i, mac in enumerate(macs()):
        lines += ['[[client]]', f'name = "pc{i:04d}"', f'mac = "{mac}"', 'image = "golden"', '']
    return "\n".join(lines)


def dnsmasq_config(leasefile: Path) -> str:
    lines = ["port=0", "interface=vsrv", "bind-interfaces", "no-ping", "dhcp-authoritative",
             f"dhcp-range={POOL[0]},{POOL[1]},255.255.0.0,1h", f"dhcp-lease-max={CLIENTS * 4}",
             "dhcp-option=3,10.77.0.1", "domain=lab", f"dhcp-leasefile={leasefile}"]
    lines += [f"dhcp-host={mac},pc{i:04d}" for i, mac in enumerate(macs())]
    return "\n".join(lines) + "\n"


def wait_for(check, what: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready in {seconds:.0f} s")
        time.sleep(0.1)


def start_bootsrv(ns: str, workdir: Path, run: str, with_disk: bool) -> subprocess.Popen:
    rundir = workdir / run
    rundir.mkdir()
    (rundir / "golden.vhd").symlink_to(workdir / "golden.vhd")
    if with_disk:
        (rundir / "disk.raw").symlink_to(workdir / "disk.raw")
    (rundir / "bootsrv.toml").write_text(bootsrv_config(with_disk))
    log_path = rundir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "bootsrv", "serve", "--config",
                                 str(rundir / "bootsrv.toml")], cwd=rundir, stdout=log, stderr=log,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
    wait_for(lambda: "bootsrv ready" in log_path.read_text(errors="replace"), "bootsrv", 120, proc)
    return proc


def start_dnsmasq(ns: str, workdir: Path, run: str) -> subprocess.Popen:
    rundir = workdir / run
    rundir.mkdir()
    conf = rundir / "dnsmasq.conf"
    conf.write_text(dnsmasq_config(rundir / "dnsmasq.leases"))
    proc = subprocess.Popen(["ip", "netns", "exec", ns, shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
                             "--no-daemon", f"--conf-file={conf}", f"--pid-file={rundir / 'dnsmasq.pid'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-lun"], capture_output=True, text=True).stdout
        return ":67 " in out
    wait_for(listening, "dnsmasq", 30, proc)
    return proc


@dataclass
class Step:
    rate: int
    drops: tuple[float, float]  # DISCOVER, REQUEST drops ratio (fraction)
    delay_ms: tuple[float, float]  # avg delay DISCOVER-OFFER, REQUEST-ACK
    exchanges: int

    @property
    def drop_free(self) -> bool:
        return self.exchanges > 0 and max(self.drops) < DROP_FREE


_DROPS = re.compile(r"drops ratio:\s*([\d.]+)\s*%")
_DELAY = re.compile(r"avg delay:\s*([\d.]+)\s*ms")
_RECV = re.compile(r"received packets:\s*(\d+)")


def perfdhcp(client_ns: str, macfile: Path, rate: int, seconds: int) -> Step:
    out = subprocess.run(["ip", "netns", "exec", client_ns, "perfdhcp", "-4", "-l", "vcli", "-M", str(macfile),
                          "-r", str(rate), "-p", str(seconds), "-W", "500000"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    drops = [float(x) / 100 for x in _DROPS.findall(out)]
    delays = [float(x) for x in _DELAY.findall(out)]
    received = [int(x) for x in _RECV.findall(out)]
    if len(drops) < 2 or len(delays) < 2:
        return Step(rate, (1.0, 1.0), (float("nan"), float("nan")), 0)
    return Step(rate, (drops[0], drops[1]), (delays[0], delays[1]), min(received[:2]) if received else 0)


@dataclass
class Result:
    steps: dict[str, list[Step]] = field(default_factory=dict)
    iscsi_p99_us: dict[str, float] = field(default_factory=dict)  # "idle" / "under DHCP load"

    def best(self, name: str) -> Step | None:
        free = [s for s in self.steps.get(name, []) if s.drop_free]
        return max(free, key=lambda s: s.rate) if free else None

    def ratio(self) -> float:
        ours, theirs = self.best("bootsrv"), self.best("dnsmasq")
        if ours is None:
            return 0.0
        if theirs is None:
            return float("inf")
        return ours.rate / theirs.rate


def read_loop_p99(server_ns: str, count: int) -> float:
    """p99 latency (µs) of `count` 4 KiB reads, one at a time, qemu-io over iSCSI from the server namespace."""
    cmds: list[str] = []
    for i in range(count):
        cmds += ["-c", f"read {(i * 7919 % 4096) * 4096} 4k"]
    out = subprocess.run(["ip", "netns", "exec", server_ns, "qemu-io", "-f", "raw", "-r", *cmds,
                          f"iscsi://10.77.0.1/{IQN_DISK}/0"], capture_output=True, text=True, timeout=600).stdout
    rates = [float(x) for x in re.findall(r"and ([\d.]+) ops/sec", out)]
    if not rates:
        raise SystemExit(f"qemu-io printed no timings: {out[-500:]}")
    latencies = sorted(1e6 / r for r in rates if r > 0)
    return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def measure(rates: list[int], seconds: int, iscsi: bool = False, iscsi_reads: int = 2000) -> Result:
    tag = secrets.token_hex(3)
    server_ns, client_ns = make_netns(tag)
    result = Result({"bootsrv": [], "dnsmasq": []})
    try:
        with tempfile.TemporaryDirectory(prefix="bootsrv-dhcp-") as tmp:
            workdir = Path(tmp)
            macfile = workdir / "macs.txt"
            macfile.write_text("\n".join(macs()) + "\n")
            create_dynamic(workdir / "golden.vhd", 16 << 20)
            if iscsi:
                with open(workdir / "disk.raw", "wb") as disk:
                    disk.truncate(16 << 20)
            for rate in rates:
                for name in ("bootsrv", "dnsmasq"):
                    if any(not s.drop_free for s in result.steps[name]):
                        continue  # it dropped at a lower rate already
                    for attempt in range(2):  # a step that dropped gets one more try (a shared machine is noisy)
                        run = f"{name}-{rate}-{attempt}"
                        proc = (start_bootsrv(server_ns, workdir, run, iscsi) if name == "bootsrv"
                                else start_dnsmasq(server_ns, workdir, run))
                        try:
                            step = perfdhcp(client_ns, macfile, rate, seconds)
                        finally:
                            stop_processes([proc])
                        print(f"  {name:8} {rate:>5}/s  drops {step.drops[0]:6.2%} {step.drops[1]:6.2%}  "
                              f"avg delay {step.delay_ms[0]:7.3f} {step.delay_ms[1]:7.3f} ms"
                              + ("  (retry)" if attempt else ""), flush=True)
                        if step.drop_free:
                            break
                    result.steps[name].append(step)
            if iscsi:
                best = result.best("bootsrv")
                load_rate = best.rate if best else rates[0]
                proc = start_bootsrv(server_ns, workdir, "bootsrv-iscsi", True)
                try:
                    read_loop_p99(server_ns, 200)  # warm-up: first logins, page cache
                    result.iscsi_p99_us["idle"] = read_loop_p99(server_ns, iscsi_reads)
                    dhcp = subprocess.Popen(["ip", "netns", "exec", client_ns, "perfdhcp", "-4", "-l", "vcli",
                                             "-M", str(macfile), "-r", str(load_rate), "-p", "600"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    try:
                        time.sleep(1)
                        result.iscsi_p99_us[f"under {load_rate}/s DHCP"] = read_loop_p99(server_ns, iscsi_reads)
                    finally:
                        stop_processes([dhcp])
                finally:
                    stop_processes([proc])
    finally:
        remove_netns(client_ns)
        remove_netns(server_ns)
    return result


def print_table(result: Result) -> None:
    print(f"{'DHCP (perfdhcp, 1000 known clients)':36} {'drop-free rate':>15} {'avg delay D-O / R-A':>22}")
    for name in ("bootsrv", "dnsmasq"):
        best = result.best(name)
        if best is None:
            print(f"{name:36} {'none':>15}")
        else:
            print(f"{name:36} {best.rate:>13}/s {best.delay_ms[0]:>9.3f} / {best.delay_ms[1]:.3f} ms")
    notes = []
    for name, bound in (("bootsrv", "a lower bound"), ("dnsmasq", "an upper bound")):
        best, steps = result.best(name), result.steps.get(name, [])
        if best is not None and steps and all(s.drop_free for s in steps):
            notes.append(f"{name} drop-free at the highest rate tried: {bound}")
    capped = f" ({'; '.join(notes)})" if notes else ""
    print(f"ratio bootsrv / dnsmasq: {result.ratio():.2f}x (drop-free: drops < {DROP_FREE:.1%}){capped}")
    for label, p99 in result.iscsi_p99_us.items():
        print(f"iSCSI 4 KiB read p99, {label}: {p99:.0f} µs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three rates, short steps: a ~1 minute smoke run")
    parser.add_argument("--iscsi", action="store_true", help="also an iSCSI 4 KiB read loop, idle and under load")
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], help="e.g. 50,100,200")
    parser.add_argument("--seconds", type=int, help="perfdhcp -p for each step")
    args = parser.parse_args()
    rates = args.rates or (QUICK_RATES if args.quick else RATES)
    seconds = args.seconds or (3 if args.quick else 5)
    print_table(measure(rates, seconds, iscsi=args.iscsi, iscsi_reads=500 if args.quick else 2000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
