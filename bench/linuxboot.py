#!/usr/bin/env python3
"""Power-on to a real Linux's root: bootsrv (full and proxy mode) vs dnsmasq + tgt tuned for speed.

The same namespaces, QEMU machine and golden disk (tests/support/linux_image.py: SYSLINUX
or GRUB, a Debian kernel, an initramfs that logs in from the iBFT and mounts its ext4 root).
Each stage is timed from QEMU's start, read off the machine's serial console as it grows:
    bootloader  SYSLINUX (BIOS) or GRUB (UEFI) reports itself
    kernel      the kernel's first line
    root        the initramfs has its root mounted over the kernel's own iSCSI session
The reference is tuned as the issue asks: an IPv6 router advertisement on the bridge (dnsmasq
--enable-ra; iPXE stops waiting for IPv6 at once) and dhcp-option=encap:175,176,1b (iPXE skips
its ProxyDHCP wait); tgt serves the same disk, raw. Stacks alternate within each round.
Run as root:

    python bench/linuxboot.py [--rounds 2] [--firmware bios uefi]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (first: it puts this checkout on sys.path)

from demo.labnet import LAB_CONFIG, PROXY_CONFIG, remove_netns, site_dhcp_argv, stop_processes, wire_lab  # noqa: E402
from netboot import MAC, run_bootsrv, run_reference, sh  # noqa: E402
from target.stores.vhd import open_vhd  # noqa: E402
from tests.support.linux_boot import linux_client  # noqa: E402
from tests.support.linux_image import SAY, golden_image  # noqa: E402

STAGES = {"bootloader": f"{SAY} bootloader", "kernel": "Linux version", "root": f"{SAY} root mounted"}
REFERENCE = "dnsmasq + tgt, tuned"
STACKS = (REFERENCE, "bootsrv, full mode", "bootsrv, proxy mode")
TUNED = ("--dhcp-option=encap:175,176,1b", "--enable-ra", "--dhcp-range=fd77::,ra-only")


def stage_times(ns: str, firmware: str, serial: Path, timeout: float = 300) -> dict[str, float]:
    """Seconds from QEMU's start to each stage's line on the console."""
    serial.unlink(missing_ok=True)
    start = time.monotonic()
    qemu = subprocess.Popen(["ip", "netns", "exec", ns, *linux_client(firmware, serial, MAC, "tap0")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[str, float] = {}
    try:
        while len(seen) < len(STAGES) and qemu.poll() is None and time.monotonic() - start < timeout:
            text = serial.read_bytes() if serial.exists() else b""
            now = time.monotonic() - start
            for stage, line in STAGES.items():
                if stage not in seen and line.encode() in text:
                    seen[stage] = now
            time.sleep(0.02)
    finally:
        qemu.kill()
        qemu.wait()
    missing = [stage for stage in STAGES if stage not in seen]
    if missing:
        raise SystemExit(f"{firmware} boot from {serial.name}: never reached {', '.join(missing)}")
    return seen


def start_stack(stack: str, lab: str, site: str, workdir: Path) -> list[subprocess.Popen]:
    shutil.rmtree(workdir / "state", ignore_errors=True)  # every boot from a fresh client disk
    if stack == REFERENCE:
        sh("ip", "-n", lab, "addr", "add", "fd77::1/64", "dev", "br0", "nodad")  # the RA's prefix
        return run_reference(lab, workdir, workdir / "golden.raw", "br0", TUNED)
    if stack == "bootsrv, full mode":
        return [run_bootsrv(lab, workdir, LAB_CONFIG.replace('interface = "tap0"', 'interface = "br0"'))]
    # The machine's address reserved as in the reference: no ping check before the offer.
    argv = site_dhcp_argv(workdir, f"--dhcp-host={MAC},10.77.0.151")
    site_dhcp = subprocess.Popen(["ip", "netns", "exec", site, *argv], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    return [site_dhcp, run_bootsrv(lab, workdir, PROXY_CONFIG)]


def stop_stack(stack: str, lab: str, processes: list[subprocess.Popen]) -> None:
    stop_processes(processes)
    if stack == REFERENCE:
        subprocess.run(["ip", "-n", lab, "addr", "del", "fd77::1/64", "dev", "br0"], capture_output=True)


def golden_files(workdir: Path) -> None:
    """The golden VHD for bootsrv, and the same disk raw for tgt."""
    shutil.copyfile(golden_image(), workdir / "golden.vhd")
    store = open_vhd(workdir / "golden.vhd", readonly=True)
    try:
        with open(workdir / "golden.raw", "wb") as raw:
            for offset in range(0, store.size, 1 << 20):
                raw.write(store.read(offset, min(1 << 20, store.size - offset)))
    finally:
        store.close()


def measure(firmwares: tuple[str, ...] = ("bios", "uefi"), rounds: int = 2) -> dict[str, dict[str, dict[str, float]]]:
    """firmware -> stack -> stage -> best seconds over the rounds."""
    tag = secrets.token_hex(3)
    lab, site = f"bsrv-lxb-{tag}", f"bsrv-lxs-{tag}"
    for ns in (lab, site):
        sh("ip", "netns", "add", ns)
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        wire_lab(lab, site)
        with tempfile.TemporaryDirectory(prefix="bootsrv-linuxboot-") as tmp:
            workdir = Path(tmp)
            golden_files(workdir)
            for firmware in firmwares:
                best = results.setdefault(firmware, {})
                for round_ in range(rounds):
                    for stack in STACKS:
                        processes = start_stack(stack, lab, site, workdir)
                        try:
                            times = stage_times(lab, firmware, workdir / f"{firmware}-{round_}.serial")
                        finally:
                            stop_stack(stack, lab, processes)
                        row = best.setdefault(stack, {})
                        for stage, seconds in times.items():
                            row[stage] = min(seconds, row.get(stage, seconds))
    finally:
        for ns in (lab, site):
            remove_netns(ns)
    return results


def ratios(results: dict[str, dict[str, dict[str, float]]]) -> list[tuple[str, float]]:
    """("firmware, stack, stage", bootsrv's seconds over the reference's): <= 1.0 is as fast or faster."""
    out = []
    for firmware, stacks in results.items():
        for stack in STACKS[1:]:
            for stage in STAGES:
                out.append((f"{firmware}, {stack}, {stage}", stacks[stack][stage] / stacks[REFERENCE][stage]))
    return out


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"{'real Linux, power-on to (s, TCG)':34} {'bootloader':>10} {'kernel':>8} {'root':>8}")
    for firmware, stacks in results.items():
        for stack, row in stacks.items():
            print(f"{firmware + ': ' + stack:34} {row['bootloader']:>10.1f} {row['kernel']:>8.1f} {row['root']:>8.1f}")
    for name, ratio in ratios(results):
        print(f"  {name}: {ratio:.2f}x the reference's time (<= 1.00: goal met)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--firmware", nargs="+", choices=("bios", "uefi"), default=["bios", "uefi"])
    args = parser.parse_args()
    print_table(measure(tuple(args.firmware), args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
