#!/usr/bin/env python3
"""Every benchmark, then the performance goals against what was measured.

    python bench/run.py [--quick] [--no-netboot] [--no-dhcp] [--no-rbd]

bootsrv and the reference (tgt; tgt-rbd on one throw-away Ceph cluster; dnsmasq + tgt for
network boot and the real Linux boot; dnsmasq for DHCP load) run in the same run on the same
machine; only ratios are compared with the goals. The network boot and the DHCP load need root (network
namespaces); --no-netboot and --no-dhcp skip them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dhcp  # noqa: E402
import linuxboot  # noqa: E402
import netboot  # noqa: E402
import storm  # noqa: E402
import vs_tgt  # noqa: E402
import vs_tgt_rbd  # noqa: E402

RSS_LIMIT_MIB = 200 * 1e6 / (1 << 20)  # the goal says 200 MB
VHD_SLACK = 0.9  # "the same ratios within 10% through a differencing VHD"
DIFF = "bootsrv differencing VHD"
DHCP_GOAL = 2.0  # "DHCP drop-free rate >= 2x dnsmasq"
RBD_GOAL = 1.0  # issue 19: "at least 1.0x tgt-rbd"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller disks, one round: a smoke run")
    parser.add_argument("--no-netboot", action="store_true", help="skip the network boot (needs root)")
    parser.add_argument("--no-dhcp", action="store_true", help="skip the DHCP load (needs root)")
    parser.add_argument("--no-rbd", action="store_true", help="skip bootsrv vs tgt-rbd on a Ceph cluster")
    args = parser.parse_args()
    print("== qemu-img bench: bootsrv vs tgt ==", flush=True)
    servers = vs_tgt.measure(size_mib=256 if args.quick else 1024, rounds=1 if args.quick else 3)
    vs_tgt.print_table(servers)
    rbd_servers = None
    if not args.no_rbd:
        print("\n== qemu-img bench on Ceph RBD: bootsrv vs tgt-rbd ==", flush=True)
        why = vs_tgt_rbd.missing()
        if why:
            print(f"skipped: {why}")
        else:
            rbd_servers = vs_tgt_rbd.measure(size_mib=256 if args.quick else 1024, rounds=1 if args.quick else 3)
            vs_tgt.print_table(rbd_servers, vs_tgt_rbd.WORKLOADS)
    print("\n== boot storm ==", flush=True)
    clients = [4, 8] if args.quick else [16, 32]
    storm_result = storm.measure(clients, golden_mib=64 if args.quick else 256, trace_mib=32 if args.quick else 256)
    storm.print_table(storm_result)
    if not args.no_netboot and os.geteuid() == 0:
        print("\n== network boot ==", flush=True)
        netboot.print_table(netboot.measure(rounds=1 if args.quick else 2))
    linux_result = None
    if not args.no_netboot and os.geteuid() == 0:
        print("\n== real Linux network boot ==", flush=True)
        linux_result = linuxboot.measure(("bios",) if args.quick else ("bios", "uefi"), rounds=1 if args.quick else 2)
        linuxboot.print_table(linux_result)
    dhcp_result = None
    if not args.no_dhcp and os.geteuid() == 0:
        print("\n== DHCP load (perfdhcp) ==", flush=True)
        dhcp_result = dhcp.measure(dhcp.QUICK_RATES if args.quick else dhcp.RATES, 3 if args.quick else 5)
        dhcp.print_table(dhcp_result)

    goals: list[tuple[str, str, str, bool]] = []
    for workload, goal in (("1M seq read", 1.5), ("1M seq write", 1.2), ("4K rand read", 1.0),
                           ("4K rand write", 1.0)):
        raw = vs_tgt.ratio(servers, "bootsrv raw", workload)
        goals.append((f"{workload}, raw", f">= {goal:.2f}x tgt", f"{raw:.2f}x", raw >= goal))
        diff = vs_tgt.ratio(servers, DIFF, workload)
        goals.append((f"{workload}, differencing VHD", f">= {goal * VHD_SLACK:.2f}x tgt", f"{diff:.2f}x",
                      diff >= goal * VHD_SLACK))
    if rbd_servers is not None:
        for workload, got in vs_tgt_rbd.ratios(rbd_servers):
            goals.append((f"{workload}, RBD", f">= {RBD_GOAL:.2f}x tgt-rbd", f"{got:.2f}x", got >= RBD_GOAL))
    for count in clients:
        got = storm_result.ratio(count)
        goals.append((f"boot storm, {count} clients", ">= 1.00x tgt", f"{got:.2f}x", got >= 1.0))
    if dhcp_result is not None:
        got = dhcp_result.ratio()
        goals.append(("DHCP drop-free rate", f">= {DHCP_GOAL:.2f}x dnsmasq", f"{got:.2f}x", got >= DHCP_GOAL))
    if linux_result is not None:
        for name, ratio in linuxboot.ratios(linux_result):
            goals.append((f"Linux boot: {name}", "<= 1.00x tuned", f"{ratio:.2f}x", ratio <= 1.0))
    busy = storm_result.busy_64
    assert busy is not None
    for label, rss in (("idle", storm_result.idle_rss_64), ("busy", busy.rss)):
        goals.append((f"RSS, 64 {label} sessions", "<= 200 MB", f"{rss * (1 << 20) / 1e6:.0f} MB",
                      rss <= RSS_LIMIT_MIB))
    print("\n== goals (issues 8, 16 and 19) ==")
    for name, goal, got, met in goals:
        print(f"{name:52} {goal:>14} {got:>10}  {'met' if met else 'MISSED'}")
    missed = sum(not met for *_, met in goals)
    print(f"{len(goals) - missed} of {len(goals)} goals met" + (" (--quick: sizes too small to judge)"
                                                                if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
