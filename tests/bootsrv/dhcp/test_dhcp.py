"""DHCP codec and policy: hand-built client packets in, decisions and bytes out."""

from __future__ import annotations

import sqlite3
import struct

import pytest
from hypothesis import given, settings, strategies as st

from bootsrv.clients import BootClient
from bootsrv.config import ClientConfig, DhcpConfig
from bootsrv.dhcp import packet as p
from bootsrv.dhcp.leases import LeaseStore
from bootsrv.dhcp.policy import Adopt, DhcpPolicy, EndIpv6Wait, PoweringOn
from bootsrv.ra import link_local
from tests.support.faults_summary import record

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
    config = DhcpConfig(**{"mode": "full", "interface": "tap0", "pool": ("10.77.0.100", "10.77.0.102"),
                           "router": SERVER, "domain": "lab", "lease_time": 3600, **dhcp})
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
    assert reply.options[p.OPT_IPXE_ENCAP] == b"\xb0\x01\x01"  # 175.176 = 1: complete, no ProxyDHCP wait
    assert EndIpv6Wait(MAC, only_to_it=False) in server.take_effects()  # we are the LAN's DHCP: to all
    request = client_packet(p.REQUEST, options={**IPXE, p.OPT_SERVER_ID: p.ip_bytes(SERVER),
                                                p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.101")})
    ack = server.handle(p.DhcpPacket.decode(request), 1001.0)
    assert ack is not None and ack.packet.message_type == p.ACK and ack.packet.yiaddr == "10.77.0.101"
    # The lease survives a restart of the store.
    server.leases.close()
    again = LeaseStore(tmp_path / "leases.sqlite", ("10.77.0.100", "10.77.0.102"), {})
    assert again.lookup(MAC).ip == "10.77.0.101" and again.lookup(MAC).state == "bound"


@pytest.mark.parametrize("mode", ["full", "proxy"])
def test_an_installing_client_runs_its_script_instead_of_sanbooting(tmp_path, mode):
    """Its script attaches the disk and boots the installer: no root-path beside it (iPXE
    would sanboot that first)."""
    server = policy(tmp_path, mode=mode)
    server.scripted = lambda name: name == "ws01"
    answer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=IPXE)), 1000.0)
    reply = p.DhcpPacket.decode(answer.packet.encode())
    assert reply.file == b"bootsrv/ws01.ipxe" and reply.options[p.OPT_BOOTFILE] == b"bootsrv/ws01.ipxe"
    assert reply.siaddr == SERVER and p.OPT_ROOT_PATH not in reply.options



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
    stranger = "02:00:00:00:00:09"
    # The first DISCOVER asks the appliance for a disk; the answer waits for it.
    assert server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=stranger, options=IPXE)), 1.0) is None
    (effect,) = server.take_effects()
    assert isinstance(effect, Adopt) and effect.mac == stranger and "PXEClient" in effect.cause
    # Asked again while the disk is being made: not a second adoption.
    assert server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=stranger, options=IPXE)), 2.0) is None
    assert server.take_effects() == []
    server.adoptions.done(stranger, True)
    server.clients[stranger] = BootClient(ClientConfig("pc-020000000009", stranger, "golden"), "iqn.x:pc",
                                          "iqn.x:initiator.pc", tmp_path / "pc.vhd", tmp_path / "g.vhd",
                                          origin="adopted")
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=stranger, options=IPXE)), 3.0)
    assert offer.packet.yiaddr in ("10.77.0.100", "10.77.0.102")
    assert offer.packet.options[p.OPT_ROOT_PATH].endswith(b"iqn.x:pc")


def test_an_os_dhcp_client_never_powers_a_client_on(tmp_path):
    """An OS's DISCOVER/REQUEST (no vendor class PXEClient) is no power-on: no reset, no dropped session."""
    server = policy(tmp_path)
    for kind in (p.DISCOVER, p.REQUEST):
        for options in ({}, {p.OPT_VENDOR_CLASS: b"udhcp 1.35.0"}, {p.OPT_VENDOR_CLASS: b"Linux ipconfig"}):
            server.handle(p.DhcpPacket.decode(client_packet(kind, options=options)), 10.0)
            assert server.take_effects() == [], (kind, options)
    for options in (IPXE, PXE_ROM_BIOS):  # boot firmware: the machine is powering on
        assert server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=options)), 20.0) is not None
        (effect,) = [e for e in server.take_effects() if isinstance(e, PoweringOn)]
        assert effect.client.name == "ws01"
        assert "DHCPDISCOVER" in effect.cause and "PXEClient" in effect.cause
    request = client_packet(p.REQUEST, options={**IPXE, p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.101")})
    server.handle(p.DhcpPacket.decode(request), 21.0)
    assert server.take_effects() == []  # a REQUEST is never a power-on


def test_random_macs_without_pxe_make_no_disks(tmp_path):
    server = policy(tmp_path, unknown_clients="golden")
    for n in range(500):
        mac = f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
        assert server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=mac)), 1.0 + n / 1000) is None
    assert server.take_effects() == []


def adopt_all(server: DhcpPolicy, macs: list[str], now: float) -> int:
    """Each MAC's PXE ROM asks once; the adoptions asked for are taken as done. Returns how many."""
    count = 0
    for mac in macs:
        server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=mac, options=PXE_ROM_BIOS)), now)
        for effect in server.take_effects():
            server.adoptions.done(effect.mac, True)
            count += 1
    return count


def test_adoption_is_bounded_in_number_and_rate(tmp_path, caplog):
    server = policy(tmp_path, unknown_clients="golden", max_adopted=4, adopt_per_minute=100)
    with caplog.at_level("WARNING", logger="bootsrv.dhcp"):
        assert adopt_all(server, [f"02:00:00:00:01:{n:02x}" for n in range(6)], 1.0) == 4
        for again in range(3):  # the refused ROM keeps asking
            assert adopt_all(server, ["02:00:00:00:01:04"], 10.0 + again) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("not adopting PXE client 02:00:00:00:01:04: dhcp.max_adopted = 4 clients adopted already") == 1
    (tmp_path / "rate").mkdir()
    rate = policy(tmp_path / "rate", unknown_clients="golden", adopt_per_minute=2)
    assert adopt_all(rate, [f"02:00:00:00:02:{n:02x}" for n in range(5)], 100.0) == 2
    assert adopt_all(rate, ["02:00:00:00:02:09"], 170.0) == 1  # a minute later there is room again


def test_a_flood_of_refused_pxe_clients_keeps_the_log_bounded(tmp_path, caplog):
    server = policy(tmp_path, unknown_clients="golden", max_adopted=0)
    with caplog.at_level("WARNING", logger="bootsrv.dhcp"):
        adopt_all(server, [f"02:00:00:10:{n >> 8:02x}:{n & 255:02x}" for n in range(2000)], 2.0)
    assert 256 <= len(caplog.records) <= 258


def test_lease_mode_gives_unknown_macs_an_address_and_no_boot_options(tmp_path):
    server = policy(tmp_path, unknown_clients="lease")
    printer = "02:00:00:00:04:01"
    for options in ({}, PXE_ROM_BIOS):
        offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=printer, options=options)), 1.0)
        assert offer is not None and offer.packet.yiaddr in ("10.77.0.100", "10.77.0.102")
        assert p.OPT_ROOT_PATH not in offer.packet.options and offer.packet.file == b""
        assert p.OPT_BOOTFILE not in offer.packet.options
        assert server.take_effects() == []  # no disk, no adoption
    request = client_packet(p.REQUEST, mac=printer, options={p.OPT_SERVER_ID: p.ip_bytes(SERVER),
                                                             p.OPT_REQUESTED_IP: p.ip_bytes(offer.packet.yiaddr)})
    ack = server.handle(p.DhcpPacket.decode(request), 2.0)
    assert ack.packet.message_type == p.ACK and ack.packet.yiaddr == offer.packet.yiaddr


def test_proxy_mode_gives_ipxe_one_way_to_boot(tmp_path):
    server = policy(tmp_path, mode="proxy")
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=IPXE)), 1.0)
    reply = p.DhcpPacket.decode(offer.packet.encode())
    assert reply.file == b"bootsrv/ws01.ipxe"  # the script sets the initiator name and sanboots
    assert p.OPT_ROOT_PATH not in reply.options and p.OPT_ISCSI_INITIATOR not in reply.options
    # The site's routers own IPv6: only this client hears that no router is coming.
    assert EndIpv6Wait(MAC, only_to_it=True) in server.take_effects()
    server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac="02:00:00:00:00:09", options=IPXE)), 2.0)
    assert not any(isinstance(e, EndIpv6Wait) for e in server.take_effects())  # not ours: not a word


def test_router_advertisement_goes_to_the_link_local_address_ipxe_forms():
    assert link_local("52:54:00:12:34:56") == "fe80::5054:00ff:fe12:3456"  # iPXE shows fe80::5054:ff:fe12:3456


def test_grouped_lease_writes_are_durable_when_durable_says_so(tmp_path):
    leases = LeaseStore(tmp_path / "g.sqlite", ("10.77.1.0", "10.77.4.255"), {})
    leases.start_writer()
    macs = [f"02:00:00:20:{n >> 8:02x}:{n & 255:02x}" for n in range(500)]
    for n, mac in enumerate(macs):
        ip = leases.choose(mac, None, 1.0)
        leases.record(mac, ip, 4000.0, "bound", f"h{n}")
        assert leases.lookup(mac).ip == ip  # decisions see it at once
    leases.durable().result(timeout=60)
    assert leases.commits < 500  # grouped: far fewer transactions than changes
    on_disk = dict(sqlite3.connect(tmp_path / "g.sqlite").execute("SELECT mac, ip FROM leases").fetchall())
    assert on_disk == {mac: leases.lookup(mac).ip for mac in macs} and len(set(on_disk.values())) == 500
    leases.release(macs[0])
    leases.close()  # the writer commits what is queued before it ends
    again = LeaseStore(tmp_path / "g.sqlite", ("10.77.1.0", "10.77.4.255"), {})
    assert again.lookup(macs[0]) is None and again.lookup(macs[1]).ip == on_disk[macs[1]]


def test_the_pool_fills_in_order_and_a_freed_address_is_offered_again(tmp_path):
    leases = LeaseStore(tmp_path / "pool.sqlite", ("10.77.9.1", "10.77.9.4"), {})
    macs = [f"02:00:00:00:09:{n:02x}" for n in range(6)]
    for n, mac in enumerate(macs[:4]):
        ip = leases.choose(mac, None, 1.0)
        assert ip == f"10.77.9.{n + 1}"
        leases.record(mac, ip, 100.0, "bound")
    assert leases.choose(macs[4], None, 1.0) is None  # exhausted
    leases.release(macs[1])
    assert leases.choose(macs[4], None, 1.0) == "10.77.9.2"
    leases.record(macs[4], "10.77.9.2", 100.0, "bound")
    assert leases.choose(macs[5], None, 200.0) == "10.77.9.3"  # all expired by then: the next one on
    assert leases.choose(macs[0], None, 50.0) == "10.77.9.1"  # a client keeps its own address


# What OVMF's "UEFI HTTPv4" entry sends (Debian's ovmf 2022.11, captured in QEMU).
HTTP_BOOT = {p.OPT_VENDOR_CLASS: b"HTTPClient:Arch:00016:UNDI:003000", p.OPT_CLIENT_ARCH: b"\0\x10",
             p.OPT_CLIENT_NDI: b"\x01\x03\x00", p.OPT_UUID: bytes(17)}
BOOT_URL = b"http://10.77.0.1:8069/snponly.efi"


def test_uefi_http_boot_gets_an_address_and_the_url_of_ipxe(tmp_path):
    server = policy(tmp_path)
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=HTTP_BOOT)), 1.0)
    reply = p.DhcpPacket.decode(offer.packet.encode())
    assert reply.message_type == p.OFFER and reply.yiaddr == "10.77.0.101"
    assert reply.options[p.OPT_VENDOR_CLASS] == b"HTTPClient"  # the firmware takes no offer without it
    assert reply.options[p.OPT_BOOTFILE] == BOOT_URL and reply.file == BOOT_URL
    assert p.OPT_ROOT_PATH not in reply.options and p.OPT_TFTP_SERVER not in reply.options
    assert [type(e) for e in server.take_effects()] == [PoweringOn]  # boot firmware: a power-on
    request = client_packet(p.REQUEST, options={**HTTP_BOOT, p.OPT_SERVER_ID: p.ip_bytes(SERVER),
                                                p.OPT_REQUESTED_IP: p.ip_bytes("10.77.0.101")})
    ack = p.DhcpPacket.decode(server.handle(p.DhcpPacket.decode(request), 2.0).packet.encode())
    assert ack.message_type == p.ACK and ack.options[p.OPT_BOOTFILE] == BOOT_URL
    # iPXE, once loaded, asks as iPXE and is answered as ever: the root-path to sanboot.
    ipxe = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=IPXE)), 3.0)
    assert p.OPT_ROOT_PATH in ipxe.packet.options and ipxe.packet.options[p.OPT_VENDOR_CLASS] == b"PXEClient"


def test_proxy_mode_answers_uefi_http_boot_with_a_proxy_offer(tmp_path):
    server = policy(tmp_path, mode="proxy")
    server.http_port = 8080
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=HTTP_BOOT)), 1.0, port=67)
    assert (offer.address, offer.port) == ("255.255.255.255", 68)
    reply = p.DhcpPacket.decode(offer.packet.encode())
    # No address: the firmware pairs it with the site server's offer ("DHCP only" + "proxy IP URI").
    assert reply.message_type == p.OFFER and reply.yiaddr == "0.0.0.0" and p.OPT_LEASE_TIME not in reply.options
    assert reply.options[p.OPT_VENDOR_CLASS] == b"HTTPClient"
    assert reply.options[p.OPT_BOOTFILE] == b"http://10.77.0.1:8080/snponly.efi"
    assert reply.option_ip(p.OPT_SERVER_ID) == SERVER
    # Its REQUEST is for the site's server; nothing is asked on port 4011.
    request = client_packet(p.REQUEST, options={**HTTP_BOOT, p.OPT_SERVER_ID: p.ip_bytes("10.77.0.2")})
    assert server.handle(p.DhcpPacket.decode(request), 2.0, port=67) is None


@pytest.mark.parametrize("mode", ["full", "proxy"])
@pytest.mark.parametrize("arch", [b"\0\x0f", b"\0\x13"])  # IA32 and ARM64 UEFI HTTP: no iPXE for them
def test_http_boot_of_other_architectures_gets_no_boot_file(tmp_path, mode, arch):
    options = {**HTTP_BOOT, p.OPT_CLIENT_ARCH: arch}
    answer = policy(tmp_path, mode=mode).handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, options=options)), 1.0)
    if mode == "proxy":
        assert answer is None
    else:
        assert answer.packet.yiaddr == "10.77.0.101" and p.OPT_BOOTFILE not in answer.packet.options
        assert answer.packet.file == b""


def test_an_unknown_http_boot_client_is_adopted_and_then_gets_the_url(tmp_path):
    """UEFI HTTP boot is boot firmware too: an unknown MAC gets a disk as a PXE ROM's would."""
    server = policy(tmp_path, unknown_clients="golden")
    stranger = "02:00:00:00:00:0a"
    assert server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=stranger, options=HTTP_BOOT)), 1.0) is None
    (effect,) = server.take_effects()
    assert isinstance(effect, Adopt) and "HTTPClient" in effect.cause
    server.adoptions.done(stranger, True)
    server.clients[stranger] = BootClient(ClientConfig("pc-02000000000a", stranger, "golden"), "iqn.x:pc",
                                          "iqn.x:initiator.pc", tmp_path / "pc.vhd", tmp_path / "g.vhd",
                                          origin="adopted")
    offer = server.handle(p.DhcpPacket.decode(client_packet(p.DISCOVER, mac=stranger, options=HTTP_BOOT)), 2.0)
    assert offer.packet.options[p.OPT_BOOTFILE] == BOOT_URL
