"""Issue 7: the web dashboard in a real browser (Debian's chromium, driven by
Playwright), its token, its JSON API and /metrics, against the real server."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.dashboard import CHROMIUM_ARGS, TOKEN, http
from tests.support.initiator import RawInitiator
from tests.support.ports import free_port
from tests.support.snapshots import (
    CLIENT, CLIENT_INITIATOR, CLIENT_IQN, bootsrv_cli, make_golden, snapshot)

pytestmark = pytest.mark.e2e


def web_config(port: int) -> str:
    from tests.support.snapshots import client_config
    return client_config(f"""
[[disk]]
name = "data"
path = "disks/data.vhd"
size = "32MiB"
[[target]]
iqn = "iqn.2026-11.lan.bootsrv:data"
luns = ["data"]
[web]
listen = "127.0.0.1:{port}"
token = "{TOKEN}"
""")


@pytest.fixture
def dashboard(run_server, tmp_path):
    make_golden(tmp_path, "32MiB")
    web_port = free_port()
    server = run_server(web_config(web_port))
    client = RawInitiator(server.port)  # the diskless client is up: a session on its disk
    client.login(digests=False, target=CLIENT_IQN, initiator=CLIENT_INITIATOR)
    yield server, web_port
    client.close()


def test_take_snapshot_button_in_chromium(dashboard, tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    server, port = dashboard
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/#token={TOKEN}")
            row = page.locator("#clients tr", has_text=CLIENT)
            row.locator("text=online").wait_for(timeout=20000)
            page.get_by_test_id(f"snapshot-{CLIENT}").click()
            page.locator("#snapshots tr[data-snapshot]").first.wait_for(timeout=20000)
            assert "done" in page.inner_text("#message")
            assert CLIENT in page.inner_text("#images")  # the golden image and who boots it
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            # The page keeps its token: a reload still shows the snapshot.
            page.reload()
            page.locator("#snapshots tr[data-snapshot]").first.wait_for(timeout=20000)
        finally:
            browser.close()
    rows = json.loads(snapshot(server, "list", "--json").stdout)
    assert [(r["disk"], r["origin"]) for r in rows] == [(CLIENT, "manual")]


def test_api_needs_the_token_and_metrics_count_real_work(dashboard):
    server, port = dashboard
    assert http(port, "/")[0] == 200  # the page itself holds no data
    for path in ("/api/overview", "/metrics"):
        assert http(port, path, token=None)[0] == 401
        assert http(port, path, token="wrong-token-wrong-token")[0] == 401
    status, body = http(port, "/api/overview")
    overview = json.loads(body)
    assert status == 200 and overview["clients"][0]["online"] is True
    assert {d["name"] for d in overview["status"]["disks"]} == {CLIENT, "data"}
    status, body = http(port, "/api/snapshot.create", {"disk": "data"})
    assert status == 200 and json.loads(body)["result"]["disk"] == "data"
    status, body = http(port, "/api/snapshot.create", {"disk": "nope"})
    assert status == 400 and "no disk or client named 'nope'" in json.loads(body)["error"]
    assert http(port, "/api/no.such.op", {})[0] == 400
    status, body = http(port, "/api/snapshot.export", {"id": 1})  # the button: to export_dir/<disk>
    exported = json.loads(body)["result"]["path"]
    assert status == 200 and exported.startswith(str(server.workdir / "exports" / "data"))
    assert "ok" in bootsrv_cli(server.workdir, "snapshot", "verify", exported).stdout
    metrics = http(port, "/metrics")[1].decode()
    assert f'bootsrv_client_online{{client="{CLIENT}"}} 1.0' in metrics
    assert 'bootsrv_snapshot_operations_total{operation="create",result="ok"} 1.0' in metrics
    assert 'bootsrv_snapshot_operations_total{operation="export",result="ok"} 1.0' in metrics
    assert 'bootsrv_snapshot_operations_total{operation="create",result="failed"} 1.0' in metrics
    other = float(metrics.split('bootsrv_scsi_commands_total{kind="other"} ')[1].split()[0])
    assert other >= 1  # the client's TEST UNIT READY
    assert "bootsrv_scsi_command_duration_seconds_bucket" in metrics and "bootsrv_iscsi_sessions 1.0" in metrics


@pytest.mark.parametrize("raw", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40)])
def test_malformed_http_is_refused_and_the_server_keeps_serving(dashboard, raw):
    server, port = dashboard
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = sock.recv(4096)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
    assert http(port, "/api/overview")[0] == 200
    assert "Traceback" not in server.log_text()
