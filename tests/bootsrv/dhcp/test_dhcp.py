"""DHCP codec and policy: hand-built client packets in, decisions and bytes out."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from bootsrv.clients import BootClient
from bootsrv.config import ClientConfig, DhcpConfig
from bootsrv.dhcp import packet as p
from bootsrv.dhcp.leases import LeaseStore
from bootsrv.dhcp.policy import DhcpPolicy
from tests.faults_summary import record

MAC = "52:54:00:12:34:56"
SERVER = "10.77.0.1"


def client_packet(kind: int, *, mac: str = MAC, options: dict[int, bytes] | None = None, giaddr: str = "0.0.0.0",
                  ciaddr: str = "0.0.0.0", flags: int = 0) -> bytes:
    """Packed by hand (not with our encoder), as a client's ROM would."""
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    head = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0x1234, 0, flags,
                       p.ip_bytes(ciaddr), bytes(4), bytes(4), p.ip_bytes(giaddr), chaddr, bytes(64), bytes(128))
    body = p.MAGIC + bytes((53, 1, kind))
    for code, value in (options or {}).items():
        body += bytes((code, len(value))) + value
    return head + body + b"\xff"


def policy(tmp_path, **dhcp) -> DhcpPolicy:
    client = BootClient(ClientConfig("ws01", MAC, "golden", ip="10.77.0.101"), "iqn.2026-11.lan.bootsrv:ws01",
                        "iqn.2026-11.lan.bootsrv:initiator.ws01", tmp_path / "ws01.vhd", tmp_path / "g.vhd")
    config = DhcpConfig(mode="full", interface="tap0", pool=("10.77.0.100", "10.77.0.102"), router=SERVER,
                        domain="lab", lease_time=3600, **dhcp)
    leases = LeaseStore(tmp_path / "leases.sqlite", config.pool, {MAC: "10.77.0.101"})
    return DhcpPolicy(config, SERVER, "255.255.255.0", leases, {MAC: client})


IPXE = {p.OPT_USER_CLASS: b"iPXE", p.OPT_VENDOR_CLASS: b"PXEClient:Arch:00000:UNDI:002001",
        p.OPT_CLIENT_ARCH: b"\0\0", p.OPT_IPXE_ENCAP: b"\x13\x01\x01"}
PXE_ROM_BIOS = {p.OPT_VENDOR_CLASS: b"PXEClient:Arch:00000:UNDI:002001", p.OPT_CLIENT_ARCH: b"\0\0",
                p.OPT_UUID: b"\0" + bytes(range(16))}


def test_ipxe_client_gets_its_address_root_path_and_initiator_name(tmp_path):
    server = policy(tmp_path)
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=IPXE)), 1000.0)
    assert offer is not None and (offer.address, offer.port) == ("255.255.255.255", 68)
    reply = p.DhcpPacket.decode(offer.packet.encode())  # what goes on the wire decodes again
    assert reply.message_type == p.OFFER and reply.yiaddr == "10.77.0.101" and reply.xid == 0x1234
    assert reply.options[p.OPT_ROOT_PATH] == b"iscsi:10.77.0.1:::0:iqn.2026-11.lan.bootsrv:ws01"
    assert reply.options[p.OPT_ISCSI_INITIATOR] == b"iqn.2026-11.lan.bootsrv:initiator.ws01"
    assert reply.options[p.OPT_VENDOR_CLASS] == b"PXEClient" and reply.file == b""  # sanboot, no chainload
    assert reply.option_ip(p.OPT_SERVER_ID) == SERVER and reply.options[p.OPT_HOSTNAME] == b"ws01"
    request = client_packet(p.REQUEST, options={**IPXE, p.OPT_SERVER_ID: p.ip_bytes(SERVER),
                                                p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.101")})
    ack = server.handle(p.DhcpPacket.decode(request), 1001.0)
    assert ack is not None and ack.packet.message_type == p.ACK and ack.packet.yiaddr == "10.77.0.101"
    # The lease survives a restart of the store.
    server.leases.close()
    again = LeaseStore(tmp_path / "leases.sqlite", ("10.77.0.100", "10.77.0.102"), {})
    assert again.lookup(MAC).ip == "10.77.0.101" and again.lookup(MAC).state == "bound"


@pytest.mark.parametrize("arch,boot_file", [(b"\0\0", b"undionly.kpxe"), (b"\0\x07", b"snponly.efi"),
                                            (b"\0\x09", b"snponly.efi")])
def test_firmware_pxe_rom_is_chainloaded_not_given_a_root_path(tmp_path, arch, boot_file):
    options = {**PXE_ROM_BIOS, p.OPT_CLIENT_ARCH: arch}
    offer = policy(tmp_path).handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=options)), 1.0)
    reply = p.DhcpPacket.decode(offer.packet.encode())
    assert reply.file == boot_file and reply.options[p.OPT_BOOTFILE] == boot_file
    assert reply.siaddr == SERVER and p.OPT_ROOT_PATH not in reply.options
    assert reply.options[p.OPT_UUID] == PXE_ROM_BIOS[p.OPT_UUID]  # echoed


def test_other_server_chosen_wrong_address_nak_and_relay(tmp_path):
    server = policy(tmp_path)
    server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=IPXE)), 1.0)
    other = client_packet(p.REQUEST, options={p.OPT_SERVER_ID: p.ip_bytes("10.77.0.9"),
                                              p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.101")})
    assert server.handle(p.DhcpPacket.decode(other), 2.0) is None
    wrong = client_packet(p.REQUEST, options={p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.150")})
    nak = server.handle(p.DhcpPacket.decode(wrong), 3.0)
    assert nak.packet.message_type == p.NAK and nak.address == "255.255.255.255"
    relayed = client_packet(p.DISCOVER, giaddr="10.88.0.1", options={p.OPT_RELAY_AGENT: b"\x01\x03abc"})
    offer = server.handle(p.DhcpPacket.decode(relayed), 4.0)
    assert (offer.address, offer.port) == ("10.88.0.1", 67)
    assert offer.packet.options[p.OPT_RELAY_AGENT] == b"\x01\x03abc"


def test_unknown_clients_ignored_and_pool_exhaustion(tmp_path, caplog):
    server = policy(tmp_path)
    assert server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac="02:00:00:00:00:09")), 1.0) is None
    leases = LeaseStore(tmp_path / "other.sqlite", ("10.77.0.100", "10.77.0.100"), {})
    assert leases.choose("02:00:00:00:00:01", None, 1.0) == "10.77.0.100"
    leases.record("02:00:00:00:00:01", "10.77.0.100", 100.0, "bound")
    assert leases.choose("02:00:00:00:00:02", None, 50.0) is None  # exhausted
    assert leases.choose("02:00:00:00:00:02", None, 150.0) == "10.77.0.100"  # expired: reusable


def test_user_class_forms_and_option_overload():
    rfc3004 = p.DhcpPacket.decode(client_packet(p.DISCOVER, options={p.OPT_USER_CLASS: b"\x04iPXE\x03abc"}))
    assert rfc3004.user_classes() == [b"iPXE", b"abc"] and rfc3004.is_ipxe
    plain = p.DhcpPacket.decode(client_packet(p.DISCOVER, options={p.OPT_USER_CLASS: b"iPXE"}))
    assert plain.user_classes() == [b"iPXE"] and plain.is_ipxe
    raw = bytearray(client_packet(p.DISCOVER, options={p.OPT_OVERLOAD: b"\x01"}))
    file_field = 44 + 64  # options carried in the file field
    raw[file_field:file_field + 9] = bytes((p.OPT_HOSTNAME, 3)) + b"abc" + bytes((255, 0, 0, 0))
    assert p.DhcpPacket.decode(bytes(raw)).options[p.OPT_HOSTNAME] == b"abc"


@settings(max_examples=400)
@given(st.binary(max_size=600))
def test_garbage_never_escapes_as_anything_but_packet_error(tmp_path_factory, blob):
    record("protocol fuzzing", inputs=1)
    try:
        packet = p.DhcpPacket.decode(blob)
    except p.PacketError:
        return
    packet.encode()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(1, 254), st.binary(max_size=40), max_size=12), st.sampled_from(range(1, 9)))
def test_random_options_through_the_policy(tmp_path_factory, options, kind):
    record("protocol fuzzing", inputs=1)
    options.pop(p.OPT_MESSAGE_TYPE, None)
    options.pop(p.OPT_OVERLOAD, None)
    server = policy(tmp_path_factory.mktemp("fuzz"))
    try:
        packet = p.DhcpPacket.decode(client_packet(kind, options=options))
    except p.PacketError:
        return
    reply = server.handle(packet, 1.0)
    if reply is not None:
        p.DhcpPacket.decode(reply.packet.encode())



def test_release_decline_and_inform(tmp_path):
    server = policy(tmp_path)
    request = client_packet(p.REQUEST, options={p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.101")})
    assert server.handle(p.DhcpPacket.decode(request), 1.0).packet.message_type == p.ACK
    release = client_packet(p.RELEASE, ciaddr="10.77.0.101", options={p.OPT_SERVER_ID: p.ip_bytes(SERVER)})
    assert server.handle(p.DhcpPacket.decode(release), 2.0) is None
    assert server.leases.lookup(MAC) is None
    # DECLINE: the address is in use by someone else; it rests before anyone gets it again.
    leases = LeaseStore(tmp_path / "d.sqlite", ("10.77.0.100", "10.77.0.100"), {})
    leases.decline("10.77.0.100", 10.0)
    assert leases.choose("02:00:00:00:00:01", None, 20.0) is None
    inform = client_packet(p.INFORM, ciaddr="10.77.0.101", options=IPXE)
    ack = server.handle(p.DhcpPacket.decode(inform), 3.0)
    assert ack.packet.message_type == p.ACK and ack.packet.yiaddr == "0.0.0.0"
    assert (ack.address, ack.port) == ("10.77.0.101", 68) and p.OPT_LEASE_TIME not in ack.packet.options


def test_unknown_clients_adopted_when_an_image_is_named(tmp_path):
    server = policy(tmp_path, unknown_clients="golden")
    adopted = []

    def adopt(mac):
        client = BootClient(ClientConfig("pc-020000000009", mac, "golden"), "iqn.x:pc", "iqn.x:initiator.pc",
                            tmp_path / "pc.vhd", tmp_path / "g.vhd")
        adopted.append(mac)
        return client

    server.adopt = adopt
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac="02:00:00:00:00:09", options=IPXE)), 1.0)
    assert adopted == ["02:00:00:00:00:09"] and offer.packet.yiaddr in ("10.77.0.100", "10.77.0.102")
    assert offer.packet.options[p.OPT_ROOT_PATH].endswith(b"iqn.x:pc")
    server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac="02:00:00:00:00:09", options=IPXE)), 2.0)
    assert adopted == ["02:00:00:00:00:09"]  # once
