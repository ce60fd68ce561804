"""Logins to a target whose disk one server at a time serves (an RBD image shared by several
bootsrv nodes): the login response waits for the claim (a worker's job, here run inline), a
disk another server holds sends the initiator there or refuses it, and a session's end gives
the claim back."""

import contextlib

import pytest

from target.iscsi.protocol import ConnectionState, TargetConnection
from target.iscsi.session import SessionRegistry
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.stores.raw import RawStore
from tests.support.claims import ClaimedDisk
from tests.support.pdus import login_pdu, parse_keys, responses

TARGET = "iqn.2026-11.lan.bootsrv:shared"


@pytest.fixture
def raw(tmp_path):
    with contextlib.closing(RawStore.create(tmp_path / "disk.img", 1 << 20)) as store:
        yield store


def log_in(disk: ClaimedDisk) -> tuple[TargetConnection, SessionRegistry]:
    directory, registry = TargetDirectory(), SessionRegistry()
    directory.add(TargetSpec(TARGET, ScsiDevice([LogicalUnit("shared", disk, target_name=TARGET)])))
    conn = TargetConnection(directory, registry)
    conn.receive_data(login_pdu(["InitiatorName=iqn.2026-11.test:i", f"TargetName={TARGET}", "AuthMethod=None"],
                                nsg=3))
    assert conn.data_to_send() == [] and not conn.logged_in  # nothing is said before the claim ends
    return conn, registry


def claim(conn: TargetConnection):
    device, holder = conn.claim_wanted()
    assert conn.claim_wanted() is None  # asked once
    return conn.claim_done(device.claim(holder)), device, holder


def test_login_waits_for_its_claim_and_the_session_end_gives_it_back(raw):
    disk = ClaimedDisk(raw)
    conn, registry = log_in(disk)
    tasks, device, holder = claim(conn)
    (reply,) = responses(conn.data_to_send())
    assert tasks == [] and reply.login_status == 0 and conn.logged_in and disk.holders == {holder}
    conn.connection_lost()
    assert conn.releases == [(device, holder)] and not registry.sessions
    device.release(holder)
    assert disk.holders == set()


def test_a_disk_another_server_serves_sends_the_login_there(raw):
    conn, registry = log_in(ClaimedDisk(raw, held_by="a", portal="10.0.0.2:3260"))
    claim(conn)
    (reply,) = responses(conn.data_to_send())
    assert reply.login_status == 0x0101  # target moved temporarily
    assert parse_keys(reply.data) == {"TargetAddress": "10.0.0.2:3260,1"}
    assert conn.state is ConnectionState.CLOSING and not registry.sessions


def test_without_its_portal_the_login_is_refused(raw):
    conn, registry = log_in(ClaimedDisk(raw, held_by="a"))
    claim(conn)
    (reply,) = responses(conn.data_to_send())
    assert reply.login_status == 0x0301 and reply.data == b""  # service unavailable
    assert conn.state is ConnectionState.CLOSING and not registry.sessions


def test_a_claim_that_ends_after_the_initiator_left_is_given_back(raw):
    conn, _ = log_in(ClaimedDisk(raw))
    device, holder = conn.claim_wanted()
    conn.connection_lost()  # it gave up waiting (a takeover waits for a dead owner's watch)
    assert conn.claim_done(device.claim(holder)) == [] and conn.releases == [(device, holder)]
