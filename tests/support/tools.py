"""The real peers the tests drive (iscsi-ls, qemu-img, iscsi-test-cu ...), run as processes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # `make test` installs these; a missing one is a set-up bug, not a skip
        pytest.fail(f"{name} is not installed (run the README's test command: make test)")
    return path


def run(cmd: list[str], *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    require_tool(cmd[0])
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


# iscsi-test-cu tests that may fail against bootsrv, one a line, each with its reason
# in a comment above it (tests/e2e holds the file beside the tests that read it).
ACCEPTED = Path(__file__).resolve().parents[1] / "e2e" / "iscsi_test_cu_accepted_failures.txt"


def accepted_failures() -> set[str]:
    lines = (line.strip() for line in ACCEPTED.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-libvhdi (pyvhdi) lives there
_LIBVHDI_READ = """
import pyvhdi, sys
handles = {}
for name in sys.argv[2:]:
    h = pyvhdi.file(); h.open(name); handles[h.identifier] = h
top = pyvhdi.file(); top.open(sys.argv[1])
h = top
while h.disk_type == 4:  # differencing: its parent by identifier, as bootsrv finds it
    parent = handles[h.parent_identifier]
    h.set_parent(parent)
    h = parent
sys.stdout.buffer.write(top.read_buffer_at_offset(top.media_size, 0))
"""


def libvhdi_read(top: str | Path, *chain: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The whole disk as libvhdi (an independent VHD reader) reads it: `top`, with the
    files its parent chain is made of; stdout holds the bytes, stderr why it could not."""
    return subprocess.run([SYSTEM_PYTHON, "-c", _LIBVHDI_READ, str(top), *map(str, chain)], capture_output=True,
                          timeout=timeout)
