"""The iSNSP messages a target registers itself with (RFC 4171 5.6.5), and the sans-IO
client connection: requests out as bytes, replies in as `Reply`s, and the answers to what
the server itself asks (ESI, SCN) made at once.

A request is: Source attribute, Message Key attributes, Delimiter, Operating attributes.
A response is: Status code, the same three groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootsrv.isns.wire import (ENTITY_PROTOCOL_ISCSI, NODE_TARGET, RESPONSE, Attr, Flag, Function, Message,
                               MessageReader, ProtocolError, Status, Tag, decode_attrs, encode_attrs,
                               PDU_PAYLOAD_LIMIT, encode_message, ip_address, string, tcp_port, uint32)

DELIMITER = Attr(Tag.DELIMITER)
# open-isns answers within 8 KiB, echoing what was registered: each registration message
# stays well under that, and a long target list goes in several messages.
MESSAGE_BUDGET = 3072


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """An iSCSI storage node we register: always a target."""
    name: str
    alias: str = ""

    def attrs(self) -> list[Attr]:
        attrs = [string(Tag.ISCSI_NAME, self.name), uint32(Tag.ISCSI_NODE_TYPE, NODE_TARGET)]
        return attrs + [string(Tag.ISCSI_ALIAS, self.alias)] if self.alias else attrs


@dataclass(frozen=True, slots=True, order=True)
class Portal:
    address: str  # an IP address, never a wildcard
    port: int

    def attrs(self) -> list[Attr]:
        return [ip_address(Tag.PORTAL_IP_ADDRESS, self.address), tcp_port(Tag.PORTAL_PORT, self.port)]


def entity_attrs(eid: str) -> list[Attr]:
    # No Registration Period: the server applies its own and says which in its reply.
    return [string(Tag.ENTITY_IDENTIFIER, eid), uint32(Tag.ENTITY_PROTOCOL, ENTITY_PROTOCOL_ISCSI)]


def node_groups(nodes: list[Node], budget: int = MESSAGE_BUDGET) -> list[list[Node]]:
    """Nodes in groups whose attributes fit one message each."""
    groups: list[list[Node]] = []
    size = budget
    for node in nodes:
        grown = len(encode_attrs(node.attrs()))
        if size + grown > budget:
            groups.append([])
            size = 0
        groups[-1].append(node)
        size += grown
    return groups


@dataclass(frozen=True, slots=True)
class Reply:
    xid: int
    function: int  # the request's function (without the response bit)
    status: int
    keys: list[Attr]
    operating: list[Attr]

    @property
    def ok(self) -> bool:
        return self.status == Status.SUCCESS

    def first(self, tag: int) -> Attr | None:
        return next((a for a in self.operating if a.tag == tag), None)


def split_delimited(attrs: list[Attr]) -> tuple[list[Attr], list[Attr]]:
    for index, attr in enumerate(attrs):
        if attr.tag == Tag.DELIMITER:
            return attrs[:index], attrs[index + 1:]
    return attrs, []


def parse_reply(message: Message) -> Reply:
    if len(message.payload) < 4:
        raise ProtocolError(f"a response of {len(message.payload)} bytes has no status code")
    keys, operating = split_delimited(decode_attrs(message.payload[4:]))
    return Reply(message.xid, message.function & ~RESPONSE, int.from_bytes(message.payload[:4], "big"),
                 keys, operating)


class ClientConnection:
    """One TCP connection's iSNSP state, as the client sees it (sans-IO)."""

    def __init__(self) -> None:
        self._reader = MessageReader()
        self._xid = 0
        self.pending: dict[int, int] = {}  # xid -> function of the requests not answered yet

    def request(self, function: Function, source: str, keys: list[Attr], operating: list[Attr],
                flags: int = 0) -> tuple[int, bytes]:
        self._xid = self._xid % 0xFFFF + 1
        attrs = [string(Tag.ISCSI_NAME, source), *keys, DELIMITER, *operating]
        data = encode_message(function, Flag.CLIENT | flags, self._xid, [a.encode() for a in attrs])
        self.pending[self._xid] = function
        return self._xid, data

    def receive(self, data: bytes) -> tuple[list[Reply], bytes]:
        """The replies in `data`, and the bytes that answer the server's own requests."""
        replies: list[Reply] = []
        answers = []
        for message in self._reader.feed(data):
            if not message.is_response:
                answers.append(answer(message))
                continue
            reply = parse_reply(message)
            if self.pending.pop(reply.xid, None) != reply.function:
                raise ProtocolError(f"a response to transaction {reply.xid} (function {reply.function:#x}), "
                                    "which is not a request of ours")
            replies.append(reply)
        return replies, b"".join(answers)


def answer(message: Message) -> bytes:
    """The response to a request the server sends: ESI (are you there?) echoes the entity
    and portal it names; SCN is acknowledged with its destination; anything else is
    'message not supported'."""
    try:
        attrs = decode_attrs(message.payload)
    except ProtocolError:
        return _response(message, Status.MESSAGE_FORMAT_ERROR, [])
    if message.function == Function.ESI:
        echoed = [a for a in attrs if a.tag in (Tag.ENTITY_IDENTIFIER, Tag.PORTAL_IP_ADDRESS, Tag.PORTAL_PORT)]
        return _response(message, Status.SUCCESS, echoed)
    if message.function == Function.SCN:
        return _response(message, Status.SUCCESS, attrs[:1])
    return _response(message, Status.MESSAGE_NOT_SUPPORTED, [])


def _response(message: Message, status: int, attrs: list[Attr]) -> bytes:
    # Only what fits a PDU is echoed: a server's request with a huge attribute gets a short
    # answer, never an error of ours.
    echoed = [chunk for chunk in (a.encode() for a in attrs) if len(chunk) <= PDU_PAYLOAD_LIMIT - 4]
    return encode_message((message.function | RESPONSE) & 0xFFFF, Flag.CLIENT, message.xid,
                          [status.to_bytes(4, "big"), *echoed])
