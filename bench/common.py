"""What the benchmarks share: this checkout's path, ports, starting and stopping servers,
a process's CPU and memory.

Invariant: importing this module puts this checkout first on sys.path, so a benchmark
imports bootsrv, target, demo and tests.support from the checkout it lives in (not from
an installed copy). It is the one place bench/ computes that path: each script imports
`common` before any of those.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MiB = 1 << 20

from tests.support.ports import free_port  # noqa: E402  (needs the path above)


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bootsrv(*args: str, **popen: object) -> subprocess.Popen:
    """`bootsrv ARGS` from this checkout, as a process."""
    return subprocess.Popen([sys.executable, "-m", "bootsrv", *args], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), **popen)  # type: ignore[call-overload]


def start_tgtd(port: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, list[str]]:
    """tgtd on 127.0.0.1:port with a private control port (a system tgt is never touched);
    returns the process and the tgtadm command prefix."""
    control = free_port() % 10000 + 20000
    proc = subprocess.Popen(["tgtd", "-f", "-C", str(control), "--iscsi", f"portal=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_port(port, proc)
    return proc, ["tgtadm", "-C", str(control), "--lld", "iscsi"]


def tgt_target(adm: list[str], tid: int, iqn: str, backing: Path | str, backing_store: tuple[str, ...] = ()) -> None:
    """Target `tid` with LUN 1 on `backing`; `backing_store`: more tgtadm options for the LUN
    (e.g. --bstype rbd --bsopts ...)."""
    subprocess.run(adm + ["--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn], check=True)
    subprocess.run(adm + ["--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", "1", "-b",
                          str(backing), *backing_store], check=True)
    subprocess.run(adm + ["--op", "bind", "--mode", "target", "--tid", str(tid), "-I", "ALL"], check=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
