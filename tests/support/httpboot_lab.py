"""UEFI HTTP boot in tests: bootsrv's boot HTTP on a loopback thread (for the path rules),
and a diskless OVMF machine whose firmware HTTP-boots on its own network stack.

The machine's NIC is a virtio-net with no option ROM (romfile=""): OVMF's VirtioNetDxe drives
it, and EDK2's own stack (MNP, DHCP4, HttpBootDxe) does the HTTP boot, not an iPXE ROM, which
would otherwise boot first. Debian's OVMF is built with HTTP boot (its "UEFI HTTPv4" entry
sends vendor class HTTPClient, architecture 16); PXE is switched off through fw_cfg
(opt/org.tianocore/IPv4PXESupport, IPv6PXESupport) so that HTTPv4 is the first network entry,
as an admin would set the boot order in the firmware's setup."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from bootsrv.httpboot import BootHttp
from tests.support.linux_boot import OVMF
from tests.support.namespaces import Namespace, tap_namespace


@contextmanager
def serving(files: Callable[[str], Path | None], roots: list[Path]) -> Iterator[int]:
    """bootsrv's BootHttp on 127.0.0.1 on a thread of its own; yields its port."""
    loop = asyncio.new_event_loop()
    server = BootHttp(files, roots)
    port = loop.run_until_complete(server.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(server.close)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.1), loop).result(10)  # connections see their EOF
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def ask(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """One request, the path sent as given (http.client does not normalise it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, headers=headers or {})
    try:
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def http_boot_namespace() -> Iterator[Namespace]:
    """A fresh namespace `bhttp-...` with tap0 = 10.77.0.1/24, removed afterwards."""
    yield from tap_namespace("bhttp")


def http_boot_client(serial: Path, mac: str, tap: str = "tap0", qemu: str = "qemu-system-x86_64") -> list[str]:
    """The QEMU command line of a diskless OVMF machine that boots by UEFI HTTP boot."""
    return [qemu, "-machine", "q35,accel=tcg", "-m", "512", "-nodefaults", "-vga", "std", "-bios", str(OVMF),
            "-display", "none", "-monitor", "none", "-serial", f"file:{serial}", "-no-reboot",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac},romfile=",
            "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
            "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"]


def power_on_http_boot(ns: Namespace, tmp_path: Path, mac: str, name: str) -> subprocess.Popen:
    """Start the machine; its COM1 goes to tmp_path/<name>.serial."""
    return ns.popen(http_boot_client(tmp_path / f"{name}.serial", mac),
                    stdout=open(tmp_path / f"{name}.qemu.log", "wb"), stderr=subprocess.STDOUT)
