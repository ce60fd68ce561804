"""Start the real server (as users run it: `python -m bootsrv serve`) and give
tests a way to reach it with real initiators."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "bootsrv ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # `make test` installs these; a missing one is a set-up bug, not a skip
        pytest.fail(f"{name} is not installed (run the README's test command: make test)")
    return path


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    config: Path
    log: Path
    workdir: Path

    def url(self, iqn: str, lun: int | None = 0, *, user: str | None = None, secret: str | None = None,
            **args: str) -> str:
        auth = f"{user}%{secret}@" if user else ""
        path = f"/{iqn}/{lun}" if lun is not None else ""
        query = "?" + "&".join(f"{k}={v}" for k, v in args.items()) if args else ""
        return f"iscsi://{auth}127.0.0.1:{self.port}{path}{query}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(workdir: Path, config_text: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    config = workdir / "bootsrv.toml"
    config.write_text(config_text.replace("@PORT@", str(port)))
    log = workdir / "server.log"
    start = len(log.read_text(errors="replace")) if log.exists() else 0  # a restart appends to the same log
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    with open(log, "ab") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "bootsrv", "serve", "--config", str(config)],
                                stdout=handle, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    server = Server(proc, port, config, log, workdir)
    deadline = time.monotonic() + 30  # a readiness wait, not an assertion on speed
    while READY_LINE not in server.log_text()[start:]:
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"server did not start:\n{server.log_text()}")
        time.sleep(0.05)
    return server


@pytest.fixture
def run_server(tmp_path):
    """Factory: run_server(config_text) -> Server; stopped (and checked for a clean exit) afterwards."""
    started: list[Server] = []

    def start(config_text: str) -> Server:
        server = start_server(tmp_path, config_text)
        started.append(server)
        return server

    yield start
    for server in started:
        code = server.stop()
        assert code == 0, f"server exited {code}:\n{server.log_text()}"
        assert "Traceback" not in server.log_text(), server.log_text()


def run(cmd: list[str], *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    require_tool(cmd[0])
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


SCRATCH_IQN = "iqn.2026-11.lan.bootsrv:scratch"


def scratch_config(size: str = "300MiB", extra_target: str = "", disk_extra: str = "") -> str:
    return f"""
[server]
state_dir = "state"

[iscsi]
portals = ["127.0.0.1:@PORT@"]

[[disk]]
name = "scratch"
path = "disks/scratch.img"
size = "{size}"
{disk_extra}

[[target]]
iqn = "{SCRATCH_IQN}"
luns = ["scratch"]
{extra_target}
"""


@pytest.fixture(scope="session")
def linux_golden() -> Path:
    """The real-Linux golden image (tests/support/linux_image.py), built once per content hash
    under build/linux and shared by every test that boots it."""
    from tests.support.linux_image import golden_image
    return golden_image()
