"""Running the bootsrv CLI as an admin does (a new process, this checkout on the path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO, checkout_env


def run_cli(*args: object, cwd: Path | str | None = None, check: bool = False,
            timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "bootsrv", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd or REPO, env=checkout_env(), timeout=timeout)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def lab_admin(workdir: Path, *args: object, config: str = "lab.toml") -> str:
    """An admin's command on the lab's configuration in `workdir` (it must succeed); its output."""
    return run_cli(*args, "-c", Path(workdir) / config, cwd=workdir, check=True).stdout
