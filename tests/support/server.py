"""Start the real server (as users run it: `python -m bootsrv serve`) and give
tests a way to reach it with real initiators.

Invariant: start_server returns only once the server logged READY_LINE, so every
portal in its configuration is listening.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import checkout_env
from tests.support.ports import free_port

READY_LINE = "bootsrv ready"


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
    """Write config_text (its @PORT@ replaced by a free port) to workdir and serve it."""
    port = free_port()
    config = workdir / "bootsrv.toml"
    config.write_text(config_text.replace("@PORT@", str(port)))
    log = workdir / "server.log"
    start = len(log.read_text(errors="replace")) if log.exists() else 0  # a restart appends to the same log
    with open(log, "ab") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "bootsrv", "serve", "--config", str(config)],
                                stdout=handle, stderr=subprocess.STDOUT, cwd=workdir, env=checkout_env(**(env or {})))
    server = Server(proc, port, config, log, workdir)
    deadline = time.monotonic() + 30  # a readiness wait, not an assertion on speed
    while READY_LINE not in server.log_text()[start:]:
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"server did not start:\n{server.log_text()}")
        time.sleep(0.05)
    return server
