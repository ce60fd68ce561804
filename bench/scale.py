#!/usr/bin/env python3
"""Startup time, RSS and descriptors of bootsrv with many [[client]] entries.

Each client's differencing disk is made on the first start (counted apart), then
the server is started again over the existing disks, as after a reboot. No root
needed: DHCP is off, so nothing but the iSCSI portal on 127.0.0.1 listens.

    python bench/scale.py [--clients 100 1000 5000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, free_port  # noqa: E402  (first: it puts this checkout on sys.path)

from target.stores.vhd.create import create_dynamic  # noqa: E402


def config_text(count: int) -> str:
    lines = ['[server]\nstate_dir = "state"\n', f'[iscsi]\nportals = ["127.0.0.1:{free_port()}"]\n',
             '[[image]]\nname = "golden"\npath = "golden.vhd"\n']
    for n in range(count):
        lines.append(f'[[client]]\nname = "seat{n:05d}"\nmac = "02:10:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:'
                     f'{n & 255:02x}"\nimage = "golden"\n')
    return "\n".join(lines)


def start(workdir: Path) -> tuple[float, int, int]:
    """(seconds to 'bootsrv ready', RSS in MiB, open descriptors) of one start, then stop it."""
    log = workdir / "server.log"
    began = time.monotonic()
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "bootsrv", "serve", "--config", str(workdir / "b.toml")],
                                  cwd=workdir, stdout=out, stderr=out, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        while b"bootsrv ready" not in log.read_bytes():
            if server.poll() is not None:
                raise SystemExit(f"bootsrv exited: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        seconds = time.monotonic() - began
        status = Path(f"/proc/{server.pid}/status").read_text()
        rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) // 1024
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        return seconds, rss, fds
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    print(f"{'clients':>8} {'first start s':>14} {'restart s':>10} {'RSS MiB':>8} {'descriptors':>12}")
    for count in args.clients:
        with tempfile.TemporaryDirectory(prefix="bootsrv-scale-") as tmp:
            workdir = Path(tmp)
            create_dynamic(workdir / "golden.vhd", 1 << 30)
            (workdir / "b.toml").write_text(config_text(count))
            first, _, _ = start(workdir)  # makes every client's disk
            seconds, rss, fds = start(workdir)
            print(f"{count:>8} {first:>14.1f} {seconds:>10.1f} {rss:>8} {fds:>12}", flush=True)


if __name__ == "__main__":
    main()
