"""The sans-IO connection driven with hand-packed PDUs, over a real raw disk file."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from target.iscsi import wire
from target.iscsi.protocol import ConnectionState, TargetConnection, TmfFunction
from target.iscsi.session import SessionRegistry
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.device import ScsiDevice
from target.scsi.lu import LogicalUnit
from target.stores.raw import RawStore
from tests.support.faults_summary import record
from tests.support.pdus import data_out_pdu, login_pdu, parse_keys, responses, scsi_pdu

TARGET = "iqn.2026-11.lan.bootsrv:disk"


@pytest.fixture
def store(tmp_path):
    s = RawStore.create(tmp_path / "disk.img", 8 << 20)
    yield s
    s.close()


def connect(store, extra_keys=(), queue_depth=16):
    directory = TargetDirectory()
    directory.add(TargetSpec(TARGET, ScsiDevice([LogicalUnit("disk", store, target_name=TARGET)])))
    conn = TargetConnection(directory, SessionRegistry(), portal_addresses=["127.0.0.1:3260"],
                            queue_depth=queue_depth)
    assert conn.state is ConnectionState.LOGIN
    conn.receive_data(login_pdu(["InitiatorName=iqn.2026-11.test:i", f"TargetName={TARGET}", "AuthMethod=None",
                                 "MaxRecvDataSegmentLength=8192", *extra_keys], nsg=3))
    (reply,) = responses(conn.data_to_send())
    assert reply.login_status == 0 and conn.logged_in
    # A new I_T nexus starts with POWER ON OCCURRED pending; clear it as initiators do.
    (ua,) = run_ready(conn, conn.receive_data(scsi_pdu(bytes(6), itt=0xAAAA, cmdsn=1, immediate=True)))
    assert ua.status == 0x02 and ua.data[2 + 12] == 0x29
    return conn


def run_ready(conn, tasks):
    for task in tasks:
        conn.complete(task, conn.target.device.execute(task.lun, task.cdb, task.data, conn.nexus))
    return responses(conn.data_to_send())


def read10(lba, blocks):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def write10(lba, blocks):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def test_write_with_r2ts_then_read_back_in_data_in_pieces(store):
    conn = connect(store, ["InitialR2T=Yes", "ImmediateData=Yes", "MaxBurstLength=16384",
                           "FirstBurstLength=4096", "MaxOutstandingR2T=2"])
    payload = bytes(range(256)) * 160  # 40 KiB
    tasks = conn.receive_data(scsi_pdu(write10(8, 80), itt=1, cmdsn=1, write=True, length=len(payload),
                                       data=payload[:4096]))
    assert tasks == []
    r2ts = responses(conn.data_to_send())
    assert [p.opcode for p in r2ts] == [0x31, 0x31]  # two outstanding, at most MaxBurstLength each
    offsets = [((p.buffer_offset, p.residual_count), p.ttt) for p in r2ts]
    assert offsets[0][0] == (4096, 16384) and offsets[1][0] == (20480, 16384)
    ready = []
    for (offset, length), ttt in offsets:
        for datasn, chunk in enumerate(range(offset, offset + length, 8192)):
            ready += conn.receive_data(data_out_pdu(itt=1, ttt=ttt, offset=chunk, datasn=datasn,
                                                    data=payload[chunk:chunk + 8192],
                                                    final=chunk + 8192 >= offset + length))
    last_r2t = responses(conn.data_to_send())
    assert len(last_r2t) == 1 and (last_r2t[0].buffer_offset, last_r2t[0].residual_count) == (36864, 4096)
    ready += conn.receive_data(data_out_pdu(itt=1, ttt=last_r2t[0].ttt, offset=36864, data=payload[36864:]))
    (response,) = run_ready(conn, ready)
    assert response.opcode == 0x21 and response.status == 0
    assert store.read(8 * 512, len(payload)) == payload

    tasks = conn.receive_data(scsi_pdu(read10(8, 80), itt=2, cmdsn=2, read=True, length=len(payload)))
    pieces = run_ready(conn, tasks)
    assert all(p.opcode == 0x25 for p in pieces) and len(pieces) == 5  # 8 KiB each (initiator's MRDSL)
    assert b"".join(p.data for p in pieces) == payload
    assert pieces[-1].flags & 0x81 == 0x81 and pieces[-1].status == 0  # F + S: status collapsed in
    assert [p.datasn for p in pieces] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("datasns", [(1,), (0, 0), (1, 0), (27,)])
def test_wrong_datasn_fails_the_connection(store, datasns):
    conn = connect(store, ["InitialR2T=Yes", "ImmediateData=No"])
    conn.receive_data(scsi_pdu(write10(0, 2), itt=1, cmdsn=1, write=True, length=1024))
    (r2t,) = responses(conn.data_to_send())
    ready = []
    for i, datasn in enumerate(datasns):
        ready += conn.receive_data(data_out_pdu(itt=1, ttt=r2t.ttt, offset=i * 512, data=b"\x77" * 512,
                                                datasn=datasn, final=i == len(datasns) - 1))
    assert ready == [] and conn.closing and "DataSN" in conn.closing
    assert store.read(0, 1024) == bytes(1024)


def test_read_residuals(store):
    conn = connect(store)
    over = run_ready(conn, conn.receive_data(scsi_pdu(read10(0, 4), itt=1, cmdsn=1, read=True, length=1024)))
    assert sum(len(p.data) for p in over) == 1024
    assert over[-1].flags & 0x04 and over[-1].residual_count == 1024  # overflow
    inquiry = bytes((0x12, 0, 0, 0x01, 0x00, 0))  # allocation length 256, standard data is 96 bytes
    under = run_ready(conn, conn.receive_data(scsi_pdu(inquiry, itt=2, cmdsn=2, read=True, length=256)))
    assert under[-1].flags & 0x02 and under[-1].residual_count == 160  # underflow


def test_out_of_range_read_is_check_condition_with_sense(store):
    conn = connect(store)
    (response,) = run_ready(conn, conn.receive_data(scsi_pdu(read10(16384, 1), itt=1, cmdsn=1, read=True,
                                                             length=512)))
    assert response.opcode == 0x21 and response.status == 0x02
    sense = response.data[2:]
    assert sense[2] & 0x0F == 0x05 and sense[12] == 0x21


def test_cmdsn_window_orders_and_drops(store):
    conn = connect(store, queue_depth=4)
    tur = bytes(6)
    assert conn.receive_data(scsi_pdu(tur, itt=2, cmdsn=2)) == []  # held: CmdSN 1 not here yet
    tasks = conn.receive_data(scsi_pdu(tur, itt=1, cmdsn=1))
    assert [t.itt for t in tasks] == [1, 2]
    replies = run_ready(conn, tasks)
    expcmdsn, maxcmdsn = replies[-1].expcmdsn, replies[-1].maxcmdsn
    assert expcmdsn == 3 and maxcmdsn == 3 + 4 - 1
    assert conn.receive_data(scsi_pdu(tur, itt=9, cmdsn=100)) == []  # outside the window: dropped
    assert conn.receive_data(scsi_pdu(tur, itt=10, cmdsn=3)) != []


def test_abort_task_waiting_for_data(store):
    conn = connect(store, ["InitialR2T=Yes"])
    conn.receive_data(scsi_pdu(write10(0, 8), itt=5, cmdsn=1, write=True, length=4096))
    conn.data_to_send()
    conn.receive_data(abort_task(itt=6, referenced=5, cmdsn=2, ref_cmdsn=0, expstatsn=1))
    (reply,) = responses(conn.data_to_send())
    assert reply.opcode == 0x22 and reply.response == 0
    # Late data for the aborted task is ignored; nothing is written and nothing answered.
    assert conn.receive_data(data_out_pdu(itt=5, ttt=1, offset=0, data=b"\x55" * 4096)) == []
    assert conn.data_to_send() == []
    assert store.read(0, 4096) == bytes(4096)


def abort_task(*, itt: int, referenced: int, cmdsn: int, ref_cmdsn: int, expstatsn: int = 0) -> bytes:
    return wire.frame(wire.tmf_request(TmfFunction.ABORT_TASK, itt=itt, cmdsn=cmdsn, referenced_itt=referenced,
                                       ref_cmdsn=ref_cmdsn, expstatsn=expstatsn))


def test_abort_task_of_an_answered_command_says_it_does_not_exist(store):
    conn = connect(store)
    (reply,) = run_ready(conn, conn.receive_data(scsi_pdu(bytes(6), itt=5, cmdsn=1)))
    assert reply.opcode == 0x21 and reply.status == 0
    conn.receive_data(abort_task(itt=6, referenced=5, cmdsn=2, ref_cmdsn=1))
    (reply,) = responses(conn.data_to_send())
    assert reply.opcode == 0x22 and reply.response == 1  # RFC 7143 11.5.1 c: Task Does Not Exist


def test_abort_task_of_a_lost_command_lets_the_later_ones_run(store):
    conn = connect(store)
    assert conn.receive_data(scsi_pdu(bytes(6), itt=8, cmdsn=2)) == []  # held: CmdSN 1 never comes
    tasks = conn.receive_data(abort_task(itt=9, referenced=7, cmdsn=3, ref_cmdsn=1))
    assert [t.itt for t in tasks] == [8]  # 11.5.1 b: CmdSN 1 counts as received
    replies = run_ready(conn, tasks)
    assert sorted((r.opcode, r.response) for r in replies) == [(0x21, 0), (0x22, 0)]


def test_send_targets_and_nop_and_logout(store):
    conn = connect(store)
    conn.receive_data(wire.frame(wire.text_request(itt=3, cmdsn=1), b"SendTargets=All\0"))
    (reply,) = responses(conn.data_to_send())
    keys = parse_keys(reply.data)
    assert keys == {"TargetName": TARGET, "TargetAddress": "127.0.0.1:3260,1"}
    assert conn.state is ConnectionState.FULL_FEATURE
    conn.receive_data(wire.frame(wire.logout_request(itt=4, cmdsn=2)))
    (reply,) = responses(conn.data_to_send())
    assert reply.opcode == 0x26 and reply.response == 0 and conn.closing
    assert conn.state is ConnectionState.CLOSING and conn.receive_data(b"\0" * 48) == []  # nothing more is read


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=1, max_size=200), max_size=8))
def test_random_bytes_after_login_never_raise(store, chunks):
    record("protocol fuzzing", inputs=1)
    conn = connect(store)
    for chunk in chunks:
        run_ready(conn, conn.receive_data(chunk))
    conn.tick(1000.0)
    conn.data_to_send()


_pdu_strategy = st.builds(
    lambda opcode, flags, fields, cdb, data: bytes([opcode, flags, 0, 0, 0]) + len(data).to_bytes(3, "big")
    + fields + cdb + data + b"\0" * (-len(data) % 4),
    st.sampled_from([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x10, 0x41, 0x42, 0x44, 0x03, 0x1C]),
    st.integers(0, 255), st.binary(min_size=24, max_size=24), st.binary(min_size=16, max_size=16),
    st.binary(max_size=64))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_pdu_strategy, max_size=12))
def test_random_wellframed_pdus_after_login_never_raise(store, pdus):
    record("protocol fuzzing", inputs=1)
    conn = connect(store)
    for pdu in pdus:
        run_ready(conn, conn.receive_data(pdu))
    conn.data_to_send()
