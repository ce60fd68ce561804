"""Network-boot test helpers: run bootsrv in a namespace, power diskless BIOS machines on
and off, and a golden image whose boot sector prints a marker."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from demo.bootsector import MARKER, marker_boot_sector
from demo.labnet import LAB_CONFIG, bios_client, site_dhcp_argv
from target.stores.vhd import open_vhd
from target.stores.vhd.create import create_dynamic
from tests.support.paths import checkout_env
from tests.support.server import READY_LINE

MAC = "52:54:00:12:34:56"
LAB = LAB_CONFIG


def wait_for(predicate, what: str, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout  # a readiness wait for slow TCG boots, not a speed assertion
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: process exited {proc.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def boot(lab_netns, tmp_path, mac: str, tag: str):  # lab_netns: any Namespace with tap0
    """Power on a diskless BIOS machine with this MAC; return once its disk's boot sector ran."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.fail("qemu-system-x86_64 is not installed (make test installs qemu-system-x86)")
    serial = tmp_path / f"serial-{tag}.txt"
    proc = lab_netns.popen(
        bios_client(serial, mac, qemu),
        stdout=open(tmp_path / f"qemu-{tag}.log", "wb"), stderr=subprocess.STDOUT)
    wait_for(lambda: serial.exists() and MARKER in serial.read_bytes(), f"{tag}'s boot sector", 240, proc)
    return proc


def power_off(proc) -> None:
    proc.kill()  # a machine switched off: no logout, no FIN from its stack
    proc.wait()


def golden_with_marker(tmp_path, size: int = 16 << 20):
    """A golden image whose boot sector prints MARKER; returns its path."""
    golden = tmp_path / "golden.vhd"
    create_dynamic(golden, size)
    store = open_vhd(golden)
    store.write(0, marker_boot_sector())
    store.close()
    return golden


def start_bootsrv(ns, tmp_path, config_text: str, name: str = "lab.toml"):
    """Run bootsrv in the namespace; returns a function reading its log."""
    return run_bootsrv(ns, tmp_path, config_text, name)[1]


def run_bootsrv(ns, tmp_path, config_text: str, name: str = "lab.toml", env: dict[str, str] | None = None,
                log_name: str = "server.log") -> tuple[subprocess.Popen, Callable[[], str]]:
    """Run bootsrv in the namespace (with `env` added to its environment); returns the
    process and a function reading its log."""
    (tmp_path / "tftp").mkdir(exist_ok=True)
    (tmp_path / name).write_text(config_text)
    log_path = tmp_path / log_name
    log = open(log_path, "wb")
    server = ns.popen([sys.executable, "-m", "bootsrv", "serve", "--config", str(tmp_path / name)],
                      stdout=log, stderr=log, cwd=tmp_path, env={**checkout_env(), **(env or {})})
    server_log = lambda: log_path.read_text(errors="replace")  # noqa: E731
    wait_for(lambda: READY_LINE in server_log(), "the server", 30, server)
    return server, server_log


TWO_CLIENTS = LAB + """
[[client]]
name = "ws02"
mac = "52:54:00:12:34:57"
image = "golden"
ip = "10.77.0.102"
reset_on_boot = true
"""


def write_as(lab_netns, client: str, pattern: int) -> None:
    """Write 4 KiB at 1 MiB on a client's disk, logged in with that client's initiator name."""
    opts = (f"driver=iscsi,transport=tcp,portal=10.77.0.1:3260,target=iqn.2026-11.lan.bootsrv:{client},lun=0,"
            f"initiator-name=iqn.2026-11.lan.bootsrv:initiator.{client}")
    result = subprocess.run(lab_netns.cmd("qemu-io", "--image-opts", opts, "-c", f"write -P {pattern} 1M 4k",
                                          "-c", "flush"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "wrote 4096/4096" in result.stdout, result.stdout + result.stderr


def read_at_1m(path) -> bytes:
    store = open_vhd(path, readonly=True)
    try:
        return store.read(1 << 20, 4096)
    finally:
        store.close()


def site_dhcp_server(site, tmp_path) -> Path:
    """The site's own DHCP server (dnsmasq) on the `site` namespace's vsite; returns its lease file."""
    site.popen(site_dhcp_argv(tmp_path, "--log-dhcp"), stdout=open(tmp_path / "dnsmasq.log", "wb"),
               stderr=subprocess.STDOUT)
    return tmp_path / "site.leases"
