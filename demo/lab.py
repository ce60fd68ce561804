"""The lab demo (`make demo`): a diskless machine boots from bootsrv, then its
disk is snapshotted and exported for backup. Everything happens inside a
network namespace this script makes and removes; nothing leaves the machine.

    sudo .venv/bin/python demo/lab.py [--keep DIR]

Steps: namespace + tap -> golden image (a boot sector that says hello) ->
bootsrv (DHCP, TFTP, iSCSI, DNS) -> QEMU (SeaBIOS + iPXE, no disk) boots over the
network and runs its own differencing disk -> snapshot -> export -> verify.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo.bootsector import marker_boot_sector  # noqa: E402
from demo.labnet import (  # noqa: E402
    CLIENT_MAC, LAB_CONFIG, bios_client, make_tap_netns, remove_netns, stop_processes)
from target.stores.vhd import open_vhd  # noqa: E402
from target.stores.vhd.create import create_dynamic  # noqa: E402

GREETING = b"Hello from ws01: booted diskless from bootsrv over iSCSI"
# The lab configuration, with an export folder for the snapshot taken at the end.
CONFIG = LAB_CONFIG + """
[snapshots]
export_dir = "backup"
"""


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.netns = f"bootsrv-demo-{secrets.token_hex(3)}"
        self.processes: list[subprocess.Popen] = []
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", flush=True)

    def ns(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def bootsrv(self, *args: str) -> str:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        result = subprocess.run(self.ns(sys.executable, "-m", "bootsrv", *args, "-c", "lab.toml"), cwd=self.workdir,
                                capture_output=True, text=True, env=env, timeout=600)
        if result.returncode:
            raise RuntimeError(f"bootsrv {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip()

    def wait(self, predicate, what: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while not predicate():
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what}: {proc.args[3] if len(proc.args) > 3 else proc.args} exited")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def run(self) -> None:
        self.say(f"network namespace {self.netns} with tap0 = 10.77.0.1/24 (the lab's wire)")
        make_tap_netns(self.netns)

        golden = self.workdir / "golden.vhd"
        create_dynamic(golden, 64 << 20)
        store = open_vhd(golden)
        store.write(0, marker_boot_sector(GREETING))
        store.close()
        self.say(f"golden image {golden} (64 MiB dynamic VHD; its boot sector prints a greeting)")

        (self.workdir / "tftp").mkdir(exist_ok=True)
        (self.workdir / "lab.toml").write_text(CONFIG)
        log = open(self.workdir / "server.log", "wb")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.processes.append(subprocess.Popen(self.ns(sys.executable, "-m", "bootsrv", "serve", "-c", "lab.toml"),
                                               cwd=self.workdir, stdout=log, stderr=log, env=env))
        server_log = lambda: (self.workdir / "server.log").read_text(errors="replace")  # noqa: E731
        self.wait(lambda: "bootsrv ready" in server_log(), "bootsrv", 60)
        self.say("bootsrv serving DHCP, TFTP, DNS and iSCSI on 10.77.0.1 (log: server.log)")

        serial = self.workdir / "ws01-serial.txt"
        qemu = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
        self.processes.append(subprocess.Popen(self.ns(*bios_client(serial, CLIENT_MAC, qemu)),
                                               stdout=subprocess.DEVNULL,
                                               stderr=open(self.workdir / "qemu.log", "wb")))
        powered = time.monotonic()
        self.say(f"QEMU machine ws01 ({CLIENT_MAC}) powered on with no disk: SeaBIOS -> iPXE -> DHCP")
        self.wait(lambda: serial.exists() and GREETING in serial.read_bytes(), "ws01 to boot", 300)
        self.say(f"ws01 booted its own disk in {time.monotonic() - powered:.1f} s; its screen says: "
                 f"{GREETING.decode()!r}")
        for needle, text in (("lease 10.77.0.101", "DHCP lease 10.77.0.101 -> ws01"),
                             ("logged in to iqn.2026-11.lan.bootsrv:ws01", "iSCSI login of ws01 to its target")):
            if needle in server_log():
                self.say(f"  server log: {text}")
        self.say("  ws01's disk: state/clients/ws01.vhd, a differencing disk over golden.vhd")

        made = self.bootsrv("snapshot", "create", "ws01", "--label", "demo")
        self.say(made)
        snap_id = json.loads(self.bootsrv("snapshot", "list", "--json"))[-1]["id"]
        exported = self.bootsrv("snapshot", "export", str(snap_id), str(self.workdir / "backup"))
        path = exported.split()[0]
        self.say(f"exported for backup: {path}")
        self.say(f"verify: {self.bootsrv('snapshot', 'verify', path)}")
        status = json.loads(self.bootsrv("status", "--json"))
        self.say(f"status: {status['sessions']} iSCSI session(s); disks "
                 + ", ".join(f"{d['name']} ({d['snapshots']} snapshot)" for d in status["disks"]))

    def close(self) -> None:
        stop_processes(self.processes)
        remove_netns(self.netns)
        self.say(f"stopped bootsrv and ws01, removed {self.netns}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab demo makes a network namespace and a tap device: run it as root (sudo make demo)")
        return 1
    workdir = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bootsrv-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    lab = Lab(workdir)
    try:
        lab.run()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        print(f"demo failed: {exc} (files in {workdir})", file=sys.stderr)
        return 1
    finally:
        lab.close()
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"files kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
