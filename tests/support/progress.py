"""Long work as an admin sees it: a disk big enough that a convert takes seconds, the CLI run
under a pseudo-terminal (util-linux `script`), and the progress lines read back from it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO, checkout_env
from tests.support.tools import require_tool

# What TerminalLine draws: " 42%|████   | 860M/2.00G [512MB/s, 00:02 left]"
PROGRESS_LINE = re.compile(r"(\d+)%\|[^|]*\| (\S+)/(\S+) \[(\S+/s), (\S+) left\]")


def spread_disk(path: Path, size: int = 2 << 30, every: int = 64 << 20, chunk: int = 1 << 20) -> Path:
    """A sparse raw disk with `chunk` bytes of data every `every` bytes (not zeros, not all the
    same byte), so that a convert reads the whole size and writes real blocks across it."""
    pattern = os.urandom(chunk)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in range(0, size, every):
            handle.seek(offset)
            handle.write(pattern)
    return path


def cli_in_terminal(*args: object, cwd: Path | None = None, timeout: float = 300) -> str:
    """`bootsrv ARGS` with a pseudo-terminal as its stdout and stderr; what it wrote there."""
    require_tool("script")
    command = shlex.join([sys.executable, "-m", "bootsrv", *map(str, args)])
    result = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True,
                            cwd=cwd or REPO, env=checkout_env(), timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


@dataclass(frozen=True)
class Drawn:
    percent: int
    done: str
    total: str
    rate: str
    left: str


def progress_lines(output: str) -> list[Drawn]:
    """Every redraw of the progress line (they are separated by carriage returns)."""
    return [Drawn(int(m[1]), m[2], m[3], m[4], m[5]) for m in PROGRESS_LINE.finditer(output)]
