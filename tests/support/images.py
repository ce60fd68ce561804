"""A lab for the image-lifecycle trials without booting an OS: bootsrv in the `lab`
namespace, a boot ROM's DHCPDISCOVER sent from the `site` namespace to power a client on,
and qemu-io logged in as a client (its own initiator name) to write and read its disk."""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.support.cli import run_cli
from tests.support.dhcpclient import PXE_ROM_VENDOR, discover, send_broadcast
from tests.support.netboot import run_bootsrv, wait_for

BASE_IQN = "iqn.2026-11.lan.bootsrv"
AT = "1M"  # where the trials write their patterns


@dataclass
class ImageLab:
    lab: object  # tests.support.namespaces.Namespace
    site: object
    workdir: Path
    config_text: str
    proc: subprocess.Popen | None = None
    log: Callable[[], str] = lambda: ""
    starts: int = 0

    def start(self, env: dict[str, str] | None = None) -> None:
        self.starts += 1
        self.proc, self.log = run_bootsrv(self.lab, self.workdir, self.config_text, env=env,
                                          log_name=f"server-{self.starts}.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.proc = None

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_cli(*args, "-c", self.workdir / "lab.toml", cwd=self.workdir, check=check)

    def versions(self, image: str = "golden") -> dict:
        return json.loads(self.admin("image", "versions", image, "--json").stdout)[0]

    def clients(self) -> dict[str, dict]:
        return {row["name"]: row for row in json.loads(self.admin("client", "list", "--json").stdout)}

    def power_on(self, mac: str, expect: str) -> None:
        """A boot ROM asks (a new xid: a new power-on); wait for the server to act on it."""
        seen = self.log().count(expect)
        send_broadcast(self.site.cmd(), "vsite", discover(mac, PXE_ROM_VENDOR, xid=secrets.randbits(32)))
        wait_for(lambda: self.log().count(expect) > seen, f"power-on ({expect})", 60)

    def io(self, client: str, *commands: str) -> str:
        """qemu-io commands on the client's LUN, logged in as the client, from the site."""
        opts = (f"driver=iscsi,transport=tcp,portal=10.77.0.1:3260,target={BASE_IQN}:{client},lun=0,"
                f"initiator-name={BASE_IQN}:initiator.{client}")
        argv = ["qemu-io", "--image-opts", opts]
        for command in commands:
            argv += ["-c", command]
        done = subprocess.run(self.site.cmd(*argv), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "failed" not in done.stdout, done.stdout + done.stderr
        return done.stdout

    def write(self, client: str, pattern: int) -> None:
        self.io(client, f"write -P {pattern} {AT} 4k", "flush")

    def holds(self, client: str, pattern: int) -> bool:
        out = subprocess.run(self.site.cmd("qemu-io", "--image-opts",
                                           f"driver=iscsi,transport=tcp,portal=10.77.0.1:3260,"
                                           f"target={BASE_IQN}:{client},lun=0,"
                                           f"initiator-name={BASE_IQN}:initiator.{client}",
                                           "-c", f"read -P {pattern} {AT} 4k"),
                             capture_output=True, text=True, timeout=120).stdout
        return "read 4096/4096" in out and "Pattern verification failed" not in out
