"""The README's first command, `make demo`, runs demo/lab.py: it must keep working."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.namespaces import demo_namespaces
from tests.support.paths import REPO

pytestmark = pytest.mark.e2e


def test_lab_demo_boots_snapshots_and_exports():
    if os.geteuid() != 0:
        pytest.fail("the lab demo needs root (ip netns)")
    before = demo_namespaces()
    result = subprocess.run([sys.executable, str(REPO / "demo" / "lab.py")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("booted its own disk", "Hello from ws01", "DHCP lease 10.77.0.101 -> ws01", "snapshot 1 of ws01",
                 "exported for backup", "ok (files, checksums and chain verified)", "removed bootsrv-demo-"):
        assert step in out, out
    assert demo_namespaces() == before  # only the demo's own: other tests may make theirs meanwhile

