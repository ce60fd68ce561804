#!/usr/bin/env python3
"""Power-on to boot sector: bootsrv vs dnsmasq + tgt, same namespace, same QEMU.

A BIOS QEMU (iPXE e1000 ROM) boots a disk whose boot sector prints a marker on
the serial port. Run as root (it makes a network namespace and removes it).

    python bench/netboot.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO  # noqa: E402  (first: it puts this checkout on sys.path)

from target.stores.vhd import open_vhd  # noqa: E402
from target.stores.vhd.create import create_dynamic  # noqa: E402
from demo.bootsector import MARKER, marker_boot_sector  # noqa: E402
from demo.labnet import (  # noqa: E402
    CLIENT_MAC, LAB_CONFIG, bios_client, make_tap_netns, remove_netns, stop_processes)

MAC = CLIENT_MAC
IQN_TGT = "iqn.2026-11.lan.tgt:ws01"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def boot_time(ns: str, workdir: Path, tag: str) -> float:
    serial = workdir / f"serial-{tag}.txt"
    start = time.monotonic()
    qemu = subprocess.Popen(["ip", "netns", "exec", ns, *bios_client(serial, MAC)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (serial.exists() and MARKER in serial.read_bytes()):
            if time.monotonic() - start > 300 or qemu.poll() is not None:
                raise SystemExit(f"{tag}: no marker")
            time.sleep(0.05)
        return time.monotonic() - start
    finally:
        qemu.kill()
        qemu.wait()


def wait_listening(ns: str, port: int) -> None:
    for _ in range(300):
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltn"], capture_output=True, text=True).stdout
        if f":{port} " in out:
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def run_bootsrv(ns: str, workdir: Path, config: str = LAB_CONFIG) -> subprocess.Popen:
    (workdir / "tftp").mkdir(exist_ok=True)
    (workdir / "lab.toml").write_text(config)
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "bootsrv", "serve", "--config",
                             str(workdir / "lab.toml")], cwd=workdir, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(ns, 3260)
    return proc


def run_reference(ns: str, workdir: Path, raw: Path, interface: str = "tap0",
                  dnsmasq_extra: tuple[str, ...] = ()) -> list[subprocess.Popen]:
    """tgt serving `raw` as LUN 1 and dnsmasq handing out its root-path on `interface`."""
    control = 20000 + secrets.randbelow(9000)
    tgt = subprocess.Popen(["ip", "netns", "exec", ns, "tgtd", "-f", "-C", str(control), "--iscsi",
                            "portal=10.77.0.1:3260"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(ns, 3260)
    adm = ["ip", "netns", "exec", ns, "tgtadm", "-C", str(control), "--lld", "iscsi"]
    sh(*adm, "--op", "new", "--mode", "target", "--tid", "1", "-T", IQN_TGT)
    sh(*adm, "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", str(raw))
    sh(*adm, "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
    dnsmasq = subprocess.Popen(["ip", "netns", "exec", ns, shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
                                "--no-daemon", "--port=0", f"--interface={interface}", "--bind-interfaces",
                                "--dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h",
                                f"--dhcp-host={MAC},10.77.0.101", f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
                                f"--dhcp-option=17,iscsi:10.77.0.1:::1:{IQN_TGT}",
                                f"--pid-file={workdir / 'dnsmasq.pid'}", *dnsmasq_extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return [tgt, dnsmasq]


def measure(rounds: int = 2) -> dict[str, float]:
    """Best power-on-to-boot-sector seconds of each setup."""
    ns = f"bsrv-bench-{secrets.token_hex(3)}"
    make_tap_netns(ns)
    try:
        results: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="bootsrv-netboot-") as tmp:
            workdir = Path(tmp)
            sector = marker_boot_sector()
            create_dynamic(workdir / "golden.vhd", 64 << 20)
            store = open_vhd(workdir / "golden.vhd")
            store.write(0, sector)
            store.close()
            raw = workdir / "golden.raw"
            raw.write_bytes(sector + bytes((64 << 20) - 512))
            for name in ("bootsrv", "dnsmasq + tgt"):
                best = float("inf")
                for round_ in range(rounds):
                    procs = [run_bootsrv(ns, workdir)] if name == "bootsrv" else run_reference(ns, workdir, raw)
                    try:
                        best = min(best, boot_time(ns, workdir, f"{name[:4]}-{round_}"))
                    finally:
                        stop_processes(procs)
                        shutil.rmtree(workdir / "state", ignore_errors=True)
                results[name] = best
    finally:
        remove_netns(ns)
    return results


def print_table(results: dict[str, float]) -> None:
    print(f"{'power-on to boot sector (BIOS, TCG)':40} {'seconds':>8}")
    for name, seconds in results.items():
        print(f"{name:40} {seconds:>8.1f}")
    print(f"ratio dnsmasq+tgt / bootsrv: {results['dnsmasq + tgt'] / results['bootsrv']:.2f}x "
          "(higher: bootsrv boots faster)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print_table(measure(args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
