"""A real iSNS server for tests: open-isns's isnsd (Debian open-isns-server) on a loopback
port, with its own configuration, database and control socket in a directory of the test,
security off; and isnsadm (open-isns-utils) to read what it holds."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


ADMIN_SOURCE = "iqn.2026-11.test:isnsadm"


@dataclass
class Isnsd:
    workdir: Path
    port: int
    registration_period: int
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """A fresh server with an empty database (a restart forgets every registration, so
        whatever is listed afterwards was registered again)."""
        self.starts += 1
        here = self.workdir / f"run{self.starts}"
        (here / "db").mkdir(parents=True)
        config = here / "isnsd.conf"
        config.write_text(f"""SourceName = iqn.2026-11.test:isnsd
Database = {here / "db"}
BindAddress = 127.0.0.1:{self.port}
ControlSocket = {here / "ctl"}
PIDFile = {here / "isnsd.pid"}
Security = 0
DefaultDiscoveryDomain = 1
SLPRegister = 0
RegistrationPeriod = {self.registration_period}
""")
        (self.workdir / "isnsadm.conf").write_text(
            f"SourceName = {ADMIN_SOURCE}\nServerAddress = {self.address}\nSecurity = 0\n")
        with open(here / "isnsd.log", "wb") as log:
            self.proc = subprocess.Popen(["isnsd", "-f", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10  # a readiness wait, not an assertion on speed
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"isnsd did not start:\n{(here / 'isnsd.log').read_text(errors='replace')}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def adm(self, *args: str) -> str:
        result = subprocess.run(["isnsadm", "-c", str(self.workdir / "isnsadm.conf"), *args],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def targets(self) -> dict[str, str]:
        """iSCSI name -> alias of every storage node of type Target (`isnsadm --list nodes`)."""
        found = {}
        for block in self.adm("--list", "nodes").split("Object ")[1:]:
            name = re.search(r'iSCSI name = "([^"]*)"', block)
            alias = re.search(r'iSCSI alias = "([^"]*)"', block)
            if name and re.search(r"iSCSI node type = Target", block):
                found[name.group(1)] = alias.group(1) if alias else ""
        return found

    def portals(self) -> list[str]:
        out = self.adm("--list", "portals")
        return sorted(f"{a}:{p}" for a, p in re.findall(r"Portal IP address = (\S+)\s+\S+\s+uint32\s+: "
                                                         r"Portal TCP/UDP port = (\d+)/tcp", out))

    def entity(self, eid: str) -> str:
        """`isnsadm --query eid=EID`: the entity and everything in it, as isnsadm prints it."""
        return self.adm("--query", f"eid={eid}")

    def wait_for(self, what: str, check, timeout: float = 30) -> None:
        """Until check() holds (the registrar works in the background): a readiness wait."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"isnsd never showed {what}: targets {self.targets()}, portals {self.portals()}")
            time.sleep(0.1)


def stamp_of(entity_text: str) -> float:
    """The entity's registration timestamp, as `isnsadm --query` prints it (local time)."""
    found = re.search(r"Timestamp = (.+)", entity_text)
    assert found, entity_text
    return time.mktime(time.strptime(found.group(1).strip(), "%a %b %d %H:%M:%S %Y"))


def register_in_process(isnsd: Isnsd, eid: str, portals: list[tuple[str, int]],
                        nodes: list) -> tuple[dict[str, str], dict[str, str], str | None]:
    """An IsnsRegistrar of this process registers `nodes` (bootsrv.isns.messages.Node) with
    isnsd and stops: what isnsd listed once it had them all, what it lists after the stop,
    and the registrar's died()."""
    from bootsrv.isns.client import IsnsRegistrar

    async def run() -> tuple[dict[str, str], dict[str, str], str | None]:
        registrar = IsnsRegistrar("127.0.0.1", isnsd.port, eid, lambda: portals, lambda: list(nodes))
        await registrar.start()
        deadline = time.monotonic() + 30  # a readiness wait
        while len(registrar.registered) < len(nodes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        listed = await asyncio.to_thread(isnsd.targets)
        await registrar.stop()
        return listed, await asyncio.to_thread(isnsd.targets), registrar.died()

    return asyncio.run(run())
