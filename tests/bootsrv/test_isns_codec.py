"""The iSNSP codec (bootsrv.isns): attributes and PDUs as RFC 4171 lays them out, messages
split and reassembled, the client's requests and the answers to the server's own, the
registration's grouping, and malformed input that only ever raises ProtocolError."""

from __future__ import annotations

import random
import struct

import pytest

from bootsrv.config.model import Portal as Address
from bootsrv.isns.client import resolve_portals
from bootsrv.isns.messages import (DELIMITER, ClientConnection, Node, Portal, answer, entity_attrs, node_groups,
                                   parse_reply)
from bootsrv.isns.wire import (HEADER, MAX_MESSAGE, MAX_PARTIAL, Attr, Flag, Function, Message, MessageReader,
                               ProtocolError, Status, Tag, address_of, decode_attrs, encode_attrs, encode_message,
                               ip_address, string, tcp_port, uint32)
from tests.support.config_sample import GOOD, refusal, write
from tests.support.fuzzseeds import mutate

NAME = "iqn.2026-11.lan.bootsrv:one"


def pdu(function: int, flags: int, xid: int, payload: bytes, seq: int = 0, version: int = 1) -> bytes:
    return HEADER.pack(version, function, len(payload), flags, xid, seq) + payload


def reply(function: int, xid: int, status: int, attrs: list[Attr]) -> bytes:
    return pdu(function | 0x8000, Flag.SERVER | Flag.FIRST | Flag.LAST, xid,
               status.to_bytes(4, "big") + encode_attrs(attrs))


# ---- attributes --------------------------------------------------------------------------

def test_attributes_are_tag_length_value_padded_to_four_bytes():
    assert string(Tag.ISCSI_NAME, "iqn.x").encode() == struct.pack("!II", 32, 8) + b"iqn.x\0\0\0"
    assert string(Tag.ISCSI_ALIAS, "abc").encode() == struct.pack("!II", 34, 4) + b"abc\0"  # null fills it
    assert uint32(Tag.ISCSI_NODE_TYPE, 1).encode() == struct.pack("!III", 33, 4, 1)
    assert DELIMITER.encode() == bytes(8)
    assert ip_address(Tag.PORTAL_IP_ADDRESS, "10.0.0.5").value == bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 5])
    assert address_of(ip_address(Tag.PORTAL_IP_ADDRESS, "10.0.0.5")) == "10.0.0.5"
    assert address_of(ip_address(Tag.PORTAL_IP_ADDRESS, "fd00::5")) == "fd00::5"
    assert tcp_port(Tag.PORTAL_PORT, 3260).uint32 == 3260  # the UDP bit clear
    attrs = [string(Tag.ENTITY_IDENTIFIER, "bootsrv:a"), DELIMITER, Attr(Tag.REGISTRATION_PERIOD)]
    decoded = decode_attrs(encode_attrs(attrs))
    assert [a.tag for a in decoded] == [1, 0, 6] and decoded[0].text == "bootsrv:a" and decoded[2].value == b""


def test_a_target_node_and_a_portal_carry_what_initiators_look_up():
    node = Node(NAME, "first disk")
    assert [(a.tag, a.value) for a in node.attrs()] == [
        (Tag.ISCSI_NAME, NAME.encode() + b"\0"), (Tag.ISCSI_NODE_TYPE, (1).to_bytes(4, "big")),
        (Tag.ISCSI_ALIAS, b"first disk\0")]
    assert [a.tag for a in Node(NAME).attrs()] == [Tag.ISCSI_NAME, Tag.ISCSI_NODE_TYPE]  # no empty alias
    assert [a.tag for a in Portal("127.0.0.1", 3260).attrs()] == [Tag.PORTAL_IP_ADDRESS, Tag.PORTAL_PORT]
    eid, protocol = entity_attrs("bootsrv:a")
    assert eid.text == "bootsrv:a" and protocol.uint32 == 2  # iSCSI


# ---- PDUs and messages -------------------------------------------------------------------

def test_a_request_is_source_key_delimiter_operating_in_one_client_pdu():
    conn = ClientConnection()
    xid, data = conn.request(Function.DEV_ATTR_REG, NAME, [string(Tag.ENTITY_IDENTIFIER, "e")],
                             [uint32(Tag.ENTITY_PROTOCOL, 2)], Flag.REPLACE)
    version, function, length, flags, got_xid, seq = HEADER.unpack_from(data)
    assert (version, function, length, got_xid, seq) == (1, 1, len(data) - 12, xid, 0)
    assert flags == Flag.CLIENT | Flag.REPLACE | Flag.FIRST | Flag.LAST
    assert [a.tag for a in decode_attrs(data[12:])] == [Tag.ISCSI_NAME, Tag.ENTITY_IDENTIFIER, 0, Tag.ENTITY_PROTOCOL]
    assert conn.request(Function.DEV_ATTR_QRY, NAME, [], [])[0] == xid + 1


def test_a_long_message_is_split_between_attributes_and_put_back_together():
    attrs = [string(Tag.ISCSI_NAME, f"{NAME}{i:04d}").encode() for i in range(300)]
    data = encode_message(Function.DEV_ATTR_REG, Flag.CLIENT, 7, attrs, limit=1000)
    pdus, offset = [], 0
    while offset < len(data):
        length = HEADER.unpack_from(data, offset)[2]
        pdus.append(data[offset:offset + 12 + length])
        offset += 12 + length
    assert len(pdus) > 10 and all(len(p) <= 1012 for p in pdus)
    assert [HEADER.unpack_from(p)[5] for p in pdus] == list(range(len(pdus)))
    assert [HEADER.unpack_from(p)[3] & (Flag.FIRST | Flag.LAST) for p in (pdus[0], pdus[1], pdus[-1])] == [
        Flag.FIRST, 0, Flag.LAST]
    for p in pdus:
        decode_attrs(p[12:])  # each PDU holds whole attributes
    reader = MessageReader()
    shuffled = pdus[:]
    random.Random(1).shuffle(shuffled)
    got = [m for p in shuffled for m in reader.feed(p)]
    assert len(got) == 1 and got[0].payload == b"".join(attrs) and got[0].xid == 7
    reader = MessageReader()  # byte by byte too
    assert [m for i in range(len(data)) for m in reader.feed(data[i:i + 1])] == got


def test_replies_are_matched_to_requests_and_carry_their_status_and_attributes():
    conn = ClientConnection()
    xid, _ = conn.request(Function.DEV_ATTR_QRY, NAME, [], [Attr(Tag.REGISTRATION_PERIOD)])
    replies, answers = conn.receive(reply(Function.DEV_ATTR_QRY, xid, 0, [
        string(Tag.ENTITY_IDENTIFIER, "e"), DELIMITER, uint32(Tag.REGISTRATION_PERIOD, 900)]))
    assert answers == b"" and len(replies) == 1
    got = replies[0]
    assert got.ok and got.function == Function.DEV_ATTR_QRY and got.keys[0].text == "e"
    assert got.first(Tag.REGISTRATION_PERIOD).uint32 == 900
    xid, _ = conn.request(Function.DEV_DEREG, NAME, [], [])
    (refused,), _ = conn.receive(reply(Function.DEV_DEREG, xid, Status.SOURCE_UNAUTHORIZED, []))
    assert not refused.ok and Status.describe(refused.status) == "source unauthorized (8)"
    assert Status.describe(999) == "status 999"
    with pytest.raises(ProtocolError, match="not a request of ours"):
        conn.receive(reply(Function.DEV_DEREG, xid, 0, []))  # answered already


def test_the_servers_own_requests_are_answered():
    conn = ClientConnection()
    esi = [string(Tag.ENTITY_IDENTIFIER, "bootsrv:a"), ip_address(Tag.PORTAL_IP_ADDRESS, "10.0.0.5"),
           tcp_port(Tag.PORTAL_PORT, 3260)]
    replies, data = conn.receive(pdu(Function.ESI, Flag.SERVER | Flag.FIRST | Flag.LAST, 40, encode_attrs(esi)))
    assert replies == []
    _, function, _, flags, xid, _ = HEADER.unpack_from(data)
    assert (function, xid, bool(flags & Flag.CLIENT)) == (0x800D, 40, True)
    assert data[12:16] == bytes(4) and data[16:] == encode_attrs(esi)  # status 0, the entity and portal echoed
    scn = [string(Tag.ISCSI_NAME, NAME), uint32(Tag.ISCSI_SCN_BITMAP, 4)]
    _, data = conn.receive(pdu(Function.SCN, Flag.SERVER | Flag.FIRST | Flag.LAST, 41, encode_attrs(scn)))
    assert HEADER.unpack_from(data)[1] == 0x8008 and data[12:16] == bytes(4) and data[16:] == encode_attrs(scn[:1])
    _, data = conn.receive(pdu(Function.HEARTBEAT, Flag.SERVER | Flag.FIRST | Flag.LAST, 42, b""))
    assert HEADER.unpack_from(data)[1] == 0x800E and int.from_bytes(data[12:16], "big") == Status.MESSAGE_NOT_SUPPORTED
    garbled = answer(Message(Function.ESI, Flag.SERVER, 43, b"\0\0\0\1\0\0\0\xff"))
    assert int.from_bytes(garbled[12:16], "big") == Status.MESSAGE_FORMAT_ERROR


def test_nodes_go_in_messages_that_fit_the_budget():
    nodes = [Node(f"{NAME}{i:03d}", f"client {i} boot disk") for i in range(100)]
    groups = node_groups(nodes, budget=1000)
    assert [n for g in groups for n in g] == nodes
    assert all(len(encode_attrs([a for n in g for a in n.attrs()])) <= 1000 for g in groups) and len(groups) > 5
    assert node_groups([]) == []


def test_wildcard_portals_are_registered_at_the_address_that_reaches_the_server():
    assert resolve_portals([("0.0.0.0", 3260), ("10.1.1.1", 3260), ("::", 3261)], "10.0.0.7") == [
        Portal("10.0.0.7", 3260), Portal("10.1.1.1", 3260)]
    assert resolve_portals([("::", 3260), ("0.0.0.0", 3260)], "fd00::7") == [Portal("fd00::7", 3260)]
    assert resolve_portals([("0.0.0.0", 3260), ("10.0.0.7", 3260)], "::ffff:10.0.0.7") == [Portal("10.0.0.7", 3260)]


# ---- malformed input: ProtocolError, never anything else, never unbounded ------------------

@pytest.mark.parametrize("data, why", [
    (pdu(0x8001, 0x0C00, 1, bytes(4), version=2), "version 2"),
    (pdu(0x8001, 0x2C00, 1, bytes(4)), "authentication"),
    (pdu(0x8001, Flag.FIRST | Flag.LAST, 1, b"", seq=3), "sequence number 3"),
    (pdu(0x8001, 0, 1, b"", seq=0) + pdu(0x8001, 0, 1, b"", seq=0), "twice"),
    (pdu(0x8001, Flag.LAST, 1, b"", seq=1) + pdu(0x8001, 0, 1, b"", seq=2), "after the last"),
    (pdu(0x8001, 0, 1, b"", seq=5) + pdu(0x8001, Flag.LAST, 1, b"", seq=2), "after the last"),
    (pdu(0x8001, 0, 1, b"") + pdu(0x8002, Flag.LAST, 1, b"", seq=1), "two functions"),
    (b"".join(pdu(0x8001, 0, xid, b"") for xid in range(MAX_PARTIAL + 1)), "half received"),
    (b"".join(pdu(0x8001, 0, 1, bytes(60000), seq=s) for s in range(MAX_MESSAGE // 60000 + 1)), "over"),
])
def test_malformed_streams_are_refused(data, why):
    with pytest.raises(ProtocolError, match=why):
        MessageReader().feed(data)


@pytest.mark.parametrize("payload, why", [
    (b"\0\0", "no status code"),
    (bytes(4) + b"\0\0\0\1\0\0\0\x10abcd", "16 bytes, 4 are left"),
    (bytes(4) + b"\0\0\0\1\0\0", "left over"),
])
def test_malformed_replies_are_refused(payload, why):
    with pytest.raises(ProtocolError, match=why):
        parse_reply(Message(0x8002, 0, 1, payload))


def test_a_wrong_sized_number_or_address_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        _ = Attr(Tag.REGISTRATION_PERIOD, b"\1\2").uint32
    with pytest.raises(ProtocolError):
        address_of(Attr(Tag.PORTAL_IP_ADDRESS, bytes(4)))


def test_mutated_traffic_only_ever_raises_protocol_error():
    rng = random.Random(20)
    conn = ClientConnection()
    xids = [conn.request(Function.DEV_ATTR_REG, NAME, [], [])[0] for _ in range(3)]
    seeds = [reply(Function.DEV_ATTR_REG, xids[0], 0, [string(Tag.ENTITY_IDENTIFIER, "e"), DELIMITER,
                                                        uint32(Tag.REGISTRATION_PERIOD, 600)]),
             pdu(Function.ESI, Flag.SERVER | Flag.FIRST | Flag.LAST, 9, encode_attrs(
                 [string(Tag.ENTITY_IDENTIFIER, "e"), ip_address(Tag.PORTAL_IP_ADDRESS, "10.0.0.1")])),
             encode_message(0x8001, Flag.SERVER, xids[1], [bytes(4), *(string(32, "x" * 40).encode()
                                                                       for _ in range(10))], limit=100)]
    for _ in range(3000):
        fresh = ClientConnection()
        fresh.pending = dict.fromkeys(xids, Function.DEV_ATTR_REG)
        data = mutate(rng, rng.choice(seeds))
        try:
            fresh.receive(data)
        except ProtocolError:
            continue
        assert len(fresh._reader._buffer) <= len(data)


def test_a_server_request_with_an_attribute_too_big_to_echo_gets_a_short_answer():
    """A PDU may carry 64 KiB; our answers go in 8 KiB PDUs (open-isns reads no more): what
    does not fit is not echoed, and nothing but a reply comes of it."""
    for function in (Function.ESI, Function.SCN):
        conn = ClientConnection()
        big = encode_attrs([string(Tag.ENTITY_IDENTIFIER, "e" * 9000)])
        replies, answers = conn.receive(pdu(function, Flag.SERVER | Flag.FIRST | Flag.LAST, 7, big))
        assert replies == [] and answers and len(answers) < 100


# ---- configuration -----------------------------------------------------------------------

def test_the_isns_key_takes_a_host_and_an_optional_port(tmp_path):
    from bootsrv.config import load_config

    def isns(value: str) -> Address | None:
        text = GOOD.replace("[iscsi]\n", f"[iscsi]\nisns = {value}\n")
        return load_config(write(tmp_path, text)).iscsi.isns

    assert load_config(write(tmp_path, GOOD)).iscsi.isns is None
    assert isns('"10.0.0.5"') == Address("10.0.0.5", 3205)
    assert isns('"isns.lan:3206"') == Address("isns.lan", 3206)
    assert isns('"[fd00::5]"') == Address("fd00::5", 3205)
    assert isns('"[fd00::5]:99"') == Address("fd00::5", 99)
    for bad in ('"fd00::5"', '"host:0"', '"host:x"', '""', "3205", '"[fd00::5]x"'):
        message = refusal(write(tmp_path, GOOD.replace("[iscsi]\n", f"[iscsi]\nisns = {bad}\n")))
        assert "iscsi.isns: expected an iSNS server" in message, message
