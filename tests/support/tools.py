"""The real peers the tests drive (iscsi-ls, qemu-img, iscsi-test-cu ...), run as processes."""

from __future__ import annotations

import shutil
import subprocess

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
