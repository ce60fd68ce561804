"""Wake-on-LAN without a network: the magic packet's bytes, the [wake] configuration and
its mistakes, which clients a request names, and where each packet goes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

import pytest

from bootsrv.config import load_config
from bootsrv.config.model import Portal, WakeConfig, WakeRoom, WakeSchedule
from bootsrv.ops import dispatch
from bootsrv.runtime.view import ApplianceView
from bootsrv.wake.clients import Sleeper, choose
from bootsrv.wake.packet import magic_packet
from bootsrv.wake.schedule import WakeScheduler, wait_until_booted
from bootsrv.wake.send import Destination, WakeError, destination
from tests.support.appliance import BASE, opened_appliance
from tests.support.config_sample import GOOD, refusal, write

MAC = bytes.fromhex("52540012345f")
CLIENTS = GOOD + """
[[image]]
name = "golden"
path = "golden.vhd"
[[image]]
name = "other"
path = "golden.vhd"
[[client]]
name = "ws01"
mac = "52:54:00:12:34:5f"
image = "golden"
[[client]]
name = "lab2-01"
mac = "52:54:00:12:34:60"
image = "other"
"""
WAKE = CLIENTS + """
[wake]
interface = "lo"
port = 7
broadcast = "10.2.255.255"
[[wake.room]]
clients = ["lab2-*"]
broadcast = "10.2.0.255:9"
[[wake.schedule]]
name = "morning"
cron = "30 6 * * 1-5"
[[wake.schedule]]
cron = "0 6 * * *"
image = "other"
"""


@pytest.mark.parametrize("mac", ["52:54:00:12:34:5f", "52-54-00-12-34-5F", "52540012345f"])
def test_magic_packet_is_six_ff_and_the_mac_sixteen_times(mac):
    packet = magic_packet(mac)
    assert len(packet) == 102 and packet == b"\xff" * 6 + MAC * 16


def test_secureon_password_follows_the_macs():
    assert magic_packet("52:54:00:12:34:5f", b"\x01\x02\x03\x04\x05\x06")[102:] == b"\x01\x02\x03\x04\x05\x06"
    with pytest.raises(ValueError, match="4 or 6 bytes"):
        magic_packet("52:54:00:12:34:5f", b"\x01\x02\x03")


@pytest.mark.parametrize("mac", ["52:54:00:12:34", "52:54-00:12:34:5f", "zz:54:00:12:34:5f", ""])
def test_a_bad_mac_is_named(mac):
    with pytest.raises(ValueError, match="not a MAC address"):
        magic_packet(mac)


def test_wake_section_parses(tmp_path):
    wake = load_config(write(tmp_path, WAKE)).wake
    assert (wake.interface, wake.port, wake.broadcast) == ("lo", 7, Portal("10.2.255.255", 7))
    assert wake.rooms == (WakeRoom(("lab2-*",), Portal("10.2.0.255", 9)),)
    assert wake.schedules == (WakeSchedule("morning", "30 6 * * 1-5", ("*",), ""),
                              WakeSchedule("wake2", "0 6 * * *", (), "other"))
    assert load_config(write(tmp_path, CLIENTS)).wake.port == 9  # the discard port by default


@pytest.mark.parametrize("change,key,expected", [
    (('broadcast = "10.2.255.255"', 'broadcast = "router.lab"'), "wake.broadcast", "IPv4 broadcast address"),
    (('broadcast = "10.2.0.255:9"', 'broadcast = "10.2.0.255:99999"'), "wake.room[0].broadcast", "IPv4"),
    (('broadcast = "10.2.0.255:9"', ''), "wake.room[0].broadcast", "the key is required"),
    (('clients = ["lab2-*"]', 'clients = []'), "wake.room[0].clients", "client names or patterns"),
    (("port = 7", "port = 0"), "wake.port", "a UDP port"),
    (("port = 7", "port = true"), "wake.port", "a UDP port"),
    (('interface = "lo"', 'interfce = "lo"'), "wake.interfce", "unknown key"),
    (('cron = "30 6 * * 1-5"', 'cron = "30 26 * * *"'), "wake.schedule[0].cron", "five cron fields"),
    (('name = "morning"', 'name = "wake2"'), "wake.schedule[1].name", "unique name"),
    (('cron = "30 6 * * 1-5"', 'cron = "30 6 * * 1-5"\nclients = ["ws09"]'), "wake.schedule[0].clients",
     "client names (lab2-01, ws01) or patterns"),
    (('* *"\nimage = "other"', '* *"\nimage = "nosuch"'), "wake.schedule[1].image", "one of the [[image]] names"),
    (('* *"\nimage = "other"', '* *"\nimage = "other"\nclients = ["ws01"]'), "wake.schedule[1].clients",
     "either clients or image"),
])
def test_wake_mistakes_name_their_key(tmp_path, change, key, expected):
    old, new = change
    assert old in WAKE
    message = refusal(write(tmp_path, WAKE.replace(old, new, 1)))
    assert f": {key}: expected " in message and expected in message, message


SNAPSHOT_WAKE = CLIENTS + '[[snapshots.schedule]]\ncron = "0 2 * * *"\nwake = true\nboot_wait = "5m"\n'


def test_snapshot_schedule_wakes_first(tmp_path):
    schedule = load_config(write(tmp_path, SNAPSHOT_WAKE)).snapshots.schedules[0]
    assert (schedule.wake, schedule.boot_wait) == (True, 300.0)


@pytest.mark.parametrize("old,new,key,expected", [
    ("wake = true", 'wake = "yes"', "snapshots.schedule[0].wake", "true or false"),
    ('boot_wait = "5m"', 'boot_wait = "soon"', "snapshots.schedule[0].boot_wait", "a duration"),
])
def test_snapshot_schedule_wake_first_mistakes(tmp_path, old, new, key, expected):
    message = refusal(write(tmp_path, SNAPSHOT_WAKE.replace(old, new)))
    assert f": {key}: expected " in message and expected in message, message


SLEEPERS = {"ws01": Sleeper("ws01", "52:54:00:12:34:5f", "golden"),
            "ws02": Sleeper("ws02", "52:54:00:12:34:61", "golden"),
            "lab2-01": Sleeper("lab2-01", "52:54:00:12:34:60", "other")}


def test_choose_by_names_all_and_image():
    assert [s.name for s in choose(SLEEPERS, {"names": ["ws02", "ws01", "ws02"]}, {"golden"})] == ["ws02", "ws01"]
    assert [s.name for s in choose(SLEEPERS, {"all": True}, set())] == ["lab2-01", "ws01", "ws02"]
    assert [s.name for s in choose(SLEEPERS, {"image": "other"}, {"golden", "other"})] == ["lab2-01"]


@pytest.mark.parametrize("args,expected", [
    ({"names": ["ws01", "ws09", "pc-1"]}, "no client named 'ws09', 'pc-1'"),
    ({"image": "nosuch"}, "no image 'nosuch'"),
    ({}, "name the clients"),
    ({"all": True, "image": "golden"}, "name the clients"),
    ({"names": "ws01"}, "a list of client names"),
])
def test_choose_refuses_what_names_nobody(args, expected):
    with pytest.raises(WakeError, match=expected):
        choose(SLEEPERS, args, {"golden"})


def test_destination_room_then_broadcast_then_the_interface(tmp_path):
    config = load_config(write(tmp_path, WAKE))
    assert destination(config, "lab2-01") == Destination("10.2.0.255", 9)
    assert destination(config, "ws01") == Destination("10.2.255.255", 7)
    local = load_config(write(tmp_path, WAKE.replace('broadcast = "10.2.255.255"', "")))
    assert destination(local, "ws01") == Destination("127.255.255.255", 7, "lo")  # lo is 127.0.0.1/8
    boot = load_config(write(tmp_path, CLIENTS + '[dhcp]\ninterface = "lo"\n[wake]\nport = 40000\n'))
    assert destination(boot, "ws01") == Destination("127.255.255.255", 40000, "lo")  # the boot interface
    nowhere = load_config(write(tmp_path, CLIENTS))
    with pytest.raises(WakeError, match="no interface to wake ws01 on: set dhcp.interface"):
        destination(nowhere, "ws01")
    missing = load_config(write(tmp_path, CLIENTS + '[wake]\ninterface = "bwake-none0"\n'))
    with pytest.raises(WakeError, match="bwake-none0"):
        destination(missing, "ws01")


def test_client_wake_operation_names_what_is_wrong(tmp_path):
    """As the admin socket and the dashboard call it, on a real appliance (no network needed)."""
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        unknown = asyncio.run(dispatch(view, "client.wake", {"names": ["ws01", "nosuch"]}))
        assert unknown == {"ok": False, "error": "no client named 'nosuch'"}
        nowhere = asyncio.run(dispatch(view, "client.wake", {"all": True}))
        assert not nowhere["ok"] and "no interface to wake ws01 on" in nowhere["error"], nowhere
        schedule = asyncio.run(dispatch(view, "wake.run", {"name": "morning"}))
        assert schedule == {"ok": False, "error": "no wake schedule named 'morning' (wake schedules: none configured)"}


def test_wake_schedules_are_jobs_at_their_cron_times_and_follow_a_changed_configuration(tmp_path):
    from apscheduler.triggers.cron import CronTrigger

    with opened_appliance(tmp_path) as app:
        jobs = WakeScheduler(ApplianceView.of(app))
        asyncio.run(jobs.start())
        assert jobs.next_runs() == {} and not jobs.changed()  # no [[wake.schedule]]: no scheduler either
        app.config = dataclasses.replace(app.config, wake=WakeConfig(schedules=(
            WakeSchedule("newyear", "0 0 1 1 *"), WakeSchedule("christmas", "0 12 25 12 *", (), "golden"))))
        assert jobs.changed()
        jobs.restart()
        try:
            runs = jobs.next_runs()
            for name, cron in (("newyear", "0 0 1 1 *"), ("christmas", "0 12 25 12 *")):  # far from now
                trigger = CronTrigger.from_crontab(cron)
                expected = trigger.get_next_fire_time(None, datetime.datetime.now(trigger.timezone))
                assert runs[name] == pytest.approx(expected.timestamp(), abs=1)
            assert not jobs.changed()
        finally:
            asyncio.run(jobs.stop())
        assert jobs.next_runs() == {"newyear": None, "christmas": None}


def test_wake_first_leaves_asleep_a_client_whose_disk_starts_over_at_power_on(tmp_path, caplog):
    """Waking a reset_on_boot client before its snapshot would discard what the snapshot is for."""
    resetting = BASE.replace('mac = "52:54:00:12:34:56"\n', 'mac = "52:54:00:12:34:56"\nreset_on_boot = true\n')
    with opened_appliance(tmp_path, resetting) as app:
        view = ApplianceView.of(app)
        # No [wake] interface: a client it tried to wake would come back as not woken.
        assert wait_until_booted(view, "schedule nightly", ["ws01"], 1) == []
        assert "not waking ws01: their disks start over" in caplog.text
        assert wait_until_booted(view, "schedule nightly", ["ws02"], 1) == ["ws02"]
