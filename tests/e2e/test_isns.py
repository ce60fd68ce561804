"""Issue 20, iSNS: bootsrv registers its entity, portal and every target with open-isns's
isnsd ([iscsi] isns), retries while the server is not there yet, keeps the registration
alive past the server's registration period, follows targets added and removed through the CLI,
registers again after the server restarts with an empty database, and deregisters at stop."""

from __future__ import annotations

import time

import pytest

from bootsrv.admin import call as admin_call
from bootsrv.isns.messages import Node
from tests.support.isnsd import Isnsd, register_in_process, stamp_of
from tests.support.ports import free_port
from tests.support.server import start_server
from tests.support.snapshots import bootsrv_cli

pytestmark = pytest.mark.e2e
BASE = "iqn.2026-11.lan.bootsrv"
EID = "bootsrv:isns-node"
PERIOD = 9  # seconds: short, so that the test sees the keep-alive (every 3 s) outlast it, with room for a stall
FIRST = {f"{BASE}:one": "first disk", f"{BASE}:two": ""}


def config(isns: str) -> str:
    return f"""
[server]
state_dir = "state"

[node]
name = "isns-node"

[iscsi]
portals = ["127.0.0.1:@PORT@"]
isns = "{isns}"

[[disk]]
name = "one"
path = "disks/one.img"
size = "8MiB"

[[disk]]
name = "two"
path = "disks/two.img"
size = "8MiB"

[[target]]
iqn = "{BASE}:one"
luns = ["one"]
alias = "first disk"

[[target]]
iqn = "{BASE}:two"
luns = ["two"]
"""


def test_isns_registration_follows_the_targets(tmp_path):
    isnsd = Isnsd(tmp_path / "isnsd", free_port(), PERIOD)
    server = start_server(tmp_path, config(isnsd.address))  # isnsd is not there yet: bootsrv serves anyway
    try:
        isnsd.start()
        isnsd.wait_for("both targets", lambda: isnsd.targets() == FIRST)
        assert isnsd.portals() == [f"127.0.0.1:{server.port}"]
        entity = isnsd.entity(EID)
        assert f'Entity identifier = "{EID}"' in entity and "Entity protocol = iSCSI" in entity, entity
        assert f"Registration Period = {PERIOD}" in entity, entity
        assert "Portal group tag = 1" in entity, entity  # the default portal group joins them
        log = server.log_text()
        assert f"iSNS server {isnsd.address}" in log and "retrying" in log, log  # logged, not fatal
        registered = stamp_of(entity)

        # A target created through the CLI (the running server applies it) is registered; one
        # removed (the same operation, through the admin socket the CLI uses) is deregistered.
        bootsrv_cli(server.workdir, "target", "create", f"{BASE}:three", "--disk", "two", "-c", str(server.config))
        isnsd.wait_for("the new target", lambda: isnsd.targets() == {**FIRST, f"{BASE}:three": ""})
        admin_call(tmp_path / "state", "target.remove", {"iqn": f"{BASE}:two"})
        now = {f"{BASE}:one": "first disk", f"{BASE}:three": ""}
        isnsd.wait_for("the target gone", lambda: isnsd.targets() == now)

        # Keep-alive: the server's timestamp moved on, and the entity outlives its period.
        isnsd.wait_for("a refreshed registration", lambda: stamp_of(isnsd.entity(EID)) > registered)
        time.sleep(max(0.0, registered + PERIOD + 1 - time.time()))
        assert isnsd.targets() == now

        # A restarted server (its database empty) gets the whole registration again.
        isnsd.stop()
        isnsd.start()
        isnsd.wait_for("the registration again", lambda: isnsd.targets() == now)
        assert isnsd.portals() == [f"127.0.0.1:{server.port}"]

        # Stopped, bootsrv deregisters its entity: nothing of it is left.
        assert server.stop() == 0
        assert isnsd.targets() == {} and isnsd.portals() == []
        assert f'"{EID}"' not in isnsd.adm("--list", "entities")
        assert "deregistered" in server.log_text()
    finally:
        server.stop()
        isnsd.stop()


def test_a_long_target_list_goes_in_several_messages_isnsd_accepts(tmp_path):
    """open-isns reads at most 8 KiB per PDU and answers within 8 KiB: 150 targets with
    aliases (about 16 KiB of attributes) are registered in several messages, all of them."""
    nodes = [Node(f"{BASE}:client-{i:03d}", f"client {i:03d} boot disk") for i in range(150)]
    isnsd = Isnsd(tmp_path / "isnsd", free_port(), 600)
    isnsd.start()
    try:
        listed, after, died = register_in_process(isnsd, "bootsrv:many", [("127.0.0.1", 3260)], nodes)
        assert listed == {n.name: n.alias for n in nodes}
        assert after == {} and died is None
    finally:
        isnsd.stop()
