"""Wake-on-LAN (issue 20): bootsrv runs in its own namespace and wakes clients on its boot
interface (a0) and, through a router that forwards directed broadcasts, in a routed room;
our own AF_PACKET sockets on the far wires read the frames and their exact bytes."""

from __future__ import annotations

import json
import subprocess

import pytest

from bootsrv.wake.packet import magic_packet
from tests.support.cli import run_cli
from tests.support.netboot import golden_with_marker, run_bootsrv
from tests.support.initiator import RawInitiator
from tests.support.paths import checkout_env
from tests.support.wake import Capture, cli_argv, cli_in, in_netns, wake_namespaces

pytestmark = pytest.mark.e2e
IQN = "iqn.2026-11.lan.bootsrv"
MACS = {"ws01": "52:54:00:aa:00:01", "ws02": "52:54:00:aa:00:02", "ws03": "52:54:00:aa:00:03",
        "far-01": "52:54:00:aa:00:04"}
IMAGES = {"ws01": "golden", "ws02": "golden", "ws03": "other", "far-01": "golden"}
CONFIG = """
[server]
state_dir = "state"

[wake]
interface = "a0"

[[wake.room]]
clients = ["far-*"]
broadcast = "10.92.0.255"

[[image]]
name = "golden"
path = "golden.vhd"

[[image]]
name = "other"
path = "golden.vhd"
""" + "".join(f'\n[[client]]\nname = "{name}"\nmac = "{mac}"\nimage = "{IMAGES[name]}"\n'
              for name, mac in MACS.items())


@pytest.fixture
def nets():
    yield from wake_namespaces()


def packets(*names: str) -> list[bytes]:
    return sorted(magic_packet(MACS[name]) for name in names)


def test_wake_by_name_all_image_and_through_a_routed_room(nets, tmp_path):
    golden_with_marker(tmp_path)
    config = tmp_path / "lab.toml"
    config.write_text(CONFIG)
    lab, room = Capture(nets.lab.name, "b0", "10.91.0.255"), Capture(nets.room.name, "c0", "10.92.0.255")

    # No server yet: the CLI sends itself, on the configured interface.
    direct = cli_in(nets.server, "client", "wake", "ws01", "-c", config)
    assert direct.returncode == 0, direct.stderr
    assert "ws01: magic packet for 52:54:00:aa:00:01 sent to 10.91.0.255:9" in direct.stdout
    assert lab.broadcasts(1) == [b"\xff" * 6 + bytes.fromhex("525400aa0001") * 16]

    server, server_log = run_bootsrv(nets.server, tmp_path, CONFIG)
    out = run_cli("client", "wake", "--all", "-c", config, check=True).stdout
    assert "far-01: magic packet for 52:54:00:aa:00:04 sent to 10.92.0.255:9" in out, out
    assert lab.broadcasts(3) == packets("ws01", "ws02", "ws03")
    assert room.broadcasts(1) == packets("far-01")  # a broadcast on the room's wire

    run_cli("client", "wake", "--image", "other", "-c", config, check=True)
    assert lab.broadcasts(1) == packets("ws03")

    sent = json.loads(run_cli("client", "wake", "ws02", "far-01", "--json", "-c", config, check=True).stdout)
    assert sent == [{"client": "ws02", "mac": MACS["ws02"], "to": "10.91.0.255:9"},
                    {"client": "far-01", "mac": MACS["far-01"], "to": "10.92.0.255:9"}]
    assert lab.broadcasts(1) == packets("ws02")
    assert room.broadcasts(1) == packets("far-01")

    unknown = run_cli("client", "wake", "ws01", "nosuch", "-c", config)
    assert unknown.returncode == 1 and "no client named 'nosuch'" in unknown.stderr, unknown.stderr
    assert lab.quiet() == [] and room.quiet() == []  # nobody is woken when one name is wrong
    assert server.poll() is None
    assert "Traceback" not in server_log()
    lab.close()
    room.close()



SCHEDULES = CONFIG + """
[[wake.schedule]]
name = "morning"
cron = "30 6 * * 1-5"
image = "other"

[[snapshots.schedule]]
name = "nightly"
cron = "0 2 * * *"
disks = ["ws01"]
wake = true
boot_wait = "10m"

[[snapshots.schedule]]
name = "quick"
cron = "0 3 * * *"
disks = ["ws02"]
wake = true
boot_wait = "1s"
"""


def test_wake_schedule_and_a_snapshot_schedule_that_wakes_its_clients_first(nets, tmp_path):
    golden_with_marker(tmp_path)
    config = tmp_path / "lab.toml"
    lab = Capture(nets.lab.name, "b0", "10.91.0.255")
    server, server_log = run_bootsrv(nets.server, tmp_path, SCHEDULES)

    # The [[wake.schedule]] run by hand wakes its image's clients.
    out = run_cli("client", "wake", "--schedule", "morning", "-c", config, check=True).stdout
    assert "ws03: magic packet" in out, out
    assert lab.broadcasts(1) == packets("ws03")

    # The snapshot schedule wakes ws01 and waits (up to 10 minutes) for its session.
    nightly = subprocess.Popen(cli_argv("schedule", "run", "nightly", "-c", config), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=checkout_env())
    try:
        assert lab.broadcasts(1) == packets("ws01")
        assert nightly.poll() is None  # still waiting: ws01 has not booted
        client = in_netns(nets.server.name, lambda: RawInitiator(3260))  # ws01's firmware logs in
        client.login(digests=False, target=f"{IQN}:ws01", initiator=f"{IQN}:initiator.ws01")
        out, _ = nightly.communicate(timeout=120)
    finally:
        if nightly.poll() is None:
            nightly.kill()
            nightly.wait()
    assert nightly.returncode == 0 and "schedule nightly: ok" in out, out
    assert "schedule nightly: ws01 booted (logged in)" in server_log()
    snaps = json.loads(run_cli("snapshot", "list", "ws01", "--json", "-c", config, check=True).stdout)
    assert [s["label"] for s in snaps] == ["nightly"]
    client.close()

    # A client that does not come up: the schedule waits boot_wait, says so, and goes on.
    quick = run_cli("schedule", "run", "quick", "-c", config)
    assert lab.broadcasts(1) == packets("ws02")
    assert "schedule quick: did not come up within 1s: ws02; going on without them" in server_log(), quick.stdout
    assert server.poll() is None and "Traceback" not in server_log()
    lab.close()
