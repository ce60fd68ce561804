"""The one-file binary run as an admin runs it: `bootsrv serve` from another folder, with no
venv and no PYTHONPATH."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.paths import REPO
from tests.support.server import READY_LINE

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def serve_binary(binary: Path, config: Path, cwd: Path, env: dict[str, str] = CLEAN_ENV,
                 log: Path | None = None) -> tuple[subprocess.Popen, Path]:
    """Start `binary serve --config CONFIG` and wait until it serves; the process and its log."""
    log = log or cwd / "server.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([str(binary), "serve", "--config", str(config)], stdout=handle,
                                stderr=subprocess.STDOUT, cwd=cwd, env=env)
    deadline = time.monotonic() + 60  # readiness wait, not a speed assertion
    while READY_LINE not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the binary did not start serving:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return proc, log


def build_binary(out: Path) -> Path:
    """PyInstaller over packaging/bootsrv.spec into OUT: OUT/bootsrv. The e2e session fixture
    `one_file_binary` calls it once and every test of the binary or the .deb shares the result."""
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath",
                    str(out), "--workpath", str(out / "build"), str(REPO / "packaging" / "bootsrv.spec")],
                   check=True, timeout=900, cwd=out)
    path = out / "bootsrv"
    print(f"dist/bootsrv: {path.stat().st_size / 1e6:.1f} MB")
    return path
