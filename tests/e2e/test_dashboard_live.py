"""Issue 20: the dashboard worth opening, in Chromium (Playwright) against one real server.
Real I/O over an iSCSI session feeds the charts (read from the page's uPlot instances);
the per-client actions work for real: Wake sends the magic packet (captured on the
loopback port the configuration sends to), Reset disk starts the disk over from the
golden image (a new file, the written data gone), maintenance starts and ends, Remove
removes; the image, task and log pages show what happened; the page fits a 390 px wide
phone; screenshots go to build/screenshots/."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.dashboard import (CHROMIUM_ARGS, TOKEN, DiskClient, http, live_config, magic_packet_of, screenshot,
                                     wake_listener)
from tests.support.ports import free_port
from tests.support.server import start_server
from tests.support.snapshots import CLIENT, bootsrv_cli, make_golden

pytestmark = pytest.mark.e2e
MAC = "52:54:00:00:00:01"  # the client's, in client_config
MiB = 1 << 20
WAIT = 30000  # ms: how long a page may take to show something (a readiness wait, not an assertion)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dashboard")
    make_golden(workdir, "32MiB")
    web_port, wake = free_port(), wake_listener()
    server = start_server(workdir, live_config(web_port, wake.getsockname()[1]))
    yield server, web_port, wake
    wake.close()
    code = server.stop()
    assert code == 0, server.log_text()
    assert "Traceback" not in server.log_text(), server.log_text()


def test_history_log_and_assets_api(live, tmp_path):
    server, port, _ = live
    status, body = http(port, "/static/uPlot.iife.min.js", token=None)  # served from the package, no token
    assert status == 200 and b"uPlot" in body
    assert http(port, "/static/uPlot.LICENSE", token=None)[1].startswith(b"The MIT License")
    assert http(port, "/static/../bootsrv.toml", token=None)[0] == 401  # only the listed files
    history = json.loads(http(port, "/api/history", {})[1])["result"]
    assert history["interval"] == 0.5 and history["span"] == 3600
    assert set(history["total"]) >= {"read", "write", "iops", "latency", "sessions", "dhcp", "tftp", "disk_used",
                                     "snapshot_bytes"}
    assert all(len(values) == len(history["t"]) for values in history["total"].values())
    assert json.loads(http(port, "/api/history", {"since": history["t"][-1] + 3600} if history["t"] else
                           {"since": 4e9})[1])["result"]["t"] == []
    status, body = http(port, "/api/history", {"since": "yesterday"})
    assert status == 400 and "since: expected" in json.loads(body)["error"]
    lines = json.loads(http(port, "/api/log.tail", {"limit": 3})[1])["result"]["lines"]
    assert 0 < len(lines) <= 3 and {"seq", "time", "level", "logger", "message"} <= set(lines[0])
    after = json.loads(http(port, "/api/log.tail", {"limit": 3, "after": lines[-1]["seq"]})[1])["result"]["lines"]
    assert all(line["seq"] > lines[-1]["seq"] for line in after)
    status, body = http(port, "/api/log.tail", {"limit": 0})
    assert status == 400 and "limit: expected" in json.loads(body)["error"]
    bad = tmp_path / "bad.toml"
    bad.write_text(server.config.read_text().replace("history_interval = 0.5", "history_interval = 0"))
    checked = bootsrv_cli(tmp_path, "check-config", str(bad), check=False)
    assert checked.returncode != 0 and "web.history_interval" in checked.stderr, checked


def test_live_dashboard_in_chromium(live):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    server, port, wake = live
    disk_file = next(c for c in json.loads(http(port, "/api/clients", {})[1])["result"] if c["name"] == CLIENT)["disk"]
    disk_file = server.workdir / disk_file if not os.path.isabs(disk_file) else disk_file
    client = DiskClient(server.port)  # the client writes and reads 4 MiB: the charts must show it
    pattern = os.urandom(4 * MiB)
    client.write(0, pattern)
    assert client.read(0, MiB) == pattern[:MiB]
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            asked: list[str] = []
            page.on("dialog", lambda dialog: (asked.append(dialog.message),  # confirm: OK; prompt: a label
                                              dialog.accept("from the dashboard" if dialog.type == "prompt" else None)))
            page.goto(f"http://127.0.0.1:{port}/#token={TOKEN}")
            page.locator("#clients tr", has_text=CLIENT).locator("text=online").wait_for(timeout=WAIT)

            # Charts fed by the real I/O: write and read throughput in all and for the client.
            page.wait_for_function("""() => { const c = window.bootsrvCharts;
                const some = (chart, i) => c[chart].data[i].some(v => v > 0);
                return some("io", 1) && some("io", 2) && some("client-io", 1) && some("client-io", 2)
                       && some("iops", 1) && some("sessions", 1) && some("space", 1); }""", timeout=WAIT)
            written = page.evaluate("() => window.bootsrvCharts['client-io'].data[2].filter(v => v > 0).length")
            assert written >= 1 and int(page.get_attribute("#chart-io", "data-points")) >= 1
            # A schedule that has not run yet is neutral, not a failure.
            schedule = page.locator("#schedules tr", has_text="nightly")
            assert "not run yet" in schedule.inner_text() and schedule.locator(".bad").count() == 0
            shots = [screenshot(page, "dashboard-desktop")]

            # Wake: the magic packet for the client's MAC reaches the configured address.
            page.get_by_test_id(f"wake-{CLIENT}").click()
            packet, _ = wake.recvfrom(2048)
            assert packet == magic_packet_of(MAC)
            page.locator("#message", has_text=f"Wake {CLIENT}: done").wait_for(timeout=WAIT)

            # Reset disk (confirmed): a new file over the golden image, the written data gone.
            before = os.stat(disk_file).st_ino
            page.get_by_test_id(f"reset-{CLIENT}").click()
            page.locator("#message", has_text=f"Reset of {CLIENT}: done").wait_for(timeout=WAIT)
            assert asked[-1].startswith(f"Reset {CLIENT}'s disk?") and "online" in asked[-1]
            client.close()
            assert os.stat(disk_file).st_ino != before
            client = DiskClient(server.port)
            assert client.read(0, MiB) == bytes(MiB)  # golden.vhd is empty
            client.close()

            # Maintenance: start it from the client's row, see it on the image page, end it there
            # with a commit: version 2, labelled, current.
            page.get_by_test_id(f"edit-{CLIENT}").click()
            page.get_by_test_id(f"discard-{CLIENT}").wait_for(timeout=WAIT)
            page.click("#clients a[href='#images/golden']")
            page.locator("#image-facts", has_text=f"Maintenance: {CLIENT}").wait_for(timeout=WAIT)
            assert "v1 (current)" in page.inner_text("#image-versions")
            page.click("#image-facts button[data-action=commit]")
            page.locator("#image-facts", has_text="No maintenance under way").wait_for(timeout=WAIT)
            version = page.locator("#image-versions tr", has_text="v2 (current)")
            assert "from the dashboard" in version.inner_text()
            shots.append(screenshot(page, "dashboard-image"))

            # The task page (a real disk convert, run by the server as a task) and the log view.
            # A convert names files of the server's: the CLI (the admin socket) may, the web API may not.
            source, copy = str(server.workdir / "golden.vhd"), str(server.workdir / "golden-copy.img")
            status, body = http(port, "/api/disk.convert", {"src": source, "dst": "/tmp/anything.img"})
            assert status == 403 and b"admin socket" in body, body
            bootsrv_cli(server.workdir, "disk", "convert", source, copy, "-c", str(server.config))
            page.click("a[data-nav=tasks]")
            row = page.locator("#tasks tr", has_text="golden-copy.img")
            row.locator("text=done").wait_for(timeout=WAIT)
            assert "100%" in row.inner_text()
            row.locator("a").click()
            page.locator("#task-facts", has_text="disk.convert").wait_for(timeout=WAIT)
            shots.append(screenshot(page, "dashboard-task"))
            page.click("a[data-nav=logs]")
            page.locator("#log tr", has_text=f"magic packet for {CLIENT}").wait_for(timeout=WAIT)
            shots.append(screenshot(page, "dashboard-log"))

            # A phone: nothing wider than the screen, the charts one under another.
            page.click("a[data-nav=overview]")
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_function("() => document.getElementById('chart-io').getBoundingClientRect().right <= 390",
                                   timeout=WAIT)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
            shots.append(screenshot(page, "dashboard-narrow"))

            # Remove (confirmed): the client is no longer served.
            page.get_by_test_id(f"remove-{CLIENT}").click()
            page.locator("#clients", has_text="no clients configured").wait_for(timeout=WAIT)
        finally:
            browser.close()
    assert all(url.startswith(f"http://127.0.0.1:{port}/") for url in requested), requested  # never a CDN
    assert json.loads(http(port, "/api/clients", {})[1])["result"] == []
    print("screenshots:", *shots)
