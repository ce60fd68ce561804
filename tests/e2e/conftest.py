"""Fixtures of the end-to-end tests: the real server, the golden Linux image, private network
namespaces, and a throw-away Ceph cluster. The helpers behind them live in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ceph
from tests.support.namespaces import tap_namespace, two_namespaces
from tests.support.server import Server, start_server


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


@pytest.fixture(scope="session")
def linux_golden() -> Path:
    """The real-Linux golden image (tests/support/linux_image.py), built once per content hash
    under build/linux and shared by every test that boots it."""
    from tests.support.linux_image import golden_image
    return golden_image()


@pytest.fixture(scope="session")
def ceph_cluster(tmp_path_factory) -> ceph.CephCluster:
    """One one-node Ceph cluster on loopback for the whole session (tests/support/ceph.py),
    started when a test first asks for it; skipped when Ceph or librbd's Python module is missing."""
    reason = ceph.missing()
    if reason is not None:
        pytest.skip(reason)
    with ceph.ceph_cluster(tmp_path_factory.mktemp("ceph")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def one_file_binary(tmp_path_factory) -> Path:
    """dist/bootsrv built once per session by PyInstaller (tests/support/binary.py), for the
    binary's own tests and the Debian package's."""
    from tests.support.binary import build_binary
    return build_binary(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def lab_netns():
    """Namespace with tap0 = 10.77.0.1/24 (the server's side of the client's wire)."""
    yield from tap_namespace()


@pytest.fixture
def proxy_lab():
    """Two namespaces on one wire: `lab` (bootsrv on br0 = 10.77.0.1, QEMU's tap0 on the bridge)
    and `site` (the site's DHCP server on 10.77.0.2), joined by a veth pair."""
    yield from two_namespaces(("tap0",))


@pytest.fixture
def classroom():
    """As proxy_lab, with two machines' taps (tap0, tap1) on the lab's bridge."""
    yield from two_namespaces(("tap0", "tap1"))


@pytest.fixture
def classroom_of_three():
    """As classroom, with a third machine's tap (tap2)."""
    yield from two_namespaces(("tap0", "tap1", "tap2"))
