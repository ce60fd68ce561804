"""Fixtures of the end-to-end tests: the real server, the golden Linux image, and
private network namespaces. The helpers behind them live in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest

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
