import hashlib

import pytest

from target.iscsi.chap import Credentials, decode_binary, encode_binary
from target.iscsi.login import _MOVES, LoginMachine, LoginStatus, Stage, Step
from target.iscsi.params import TargetLimits
from target.iscsi import wire
from target.iscsi.pdu import PduReader
from target.iscsi.session import SessionRegistry
from target.iscsi.targets import TargetDirectory, TargetSpec
from tests.support.pdus import login_pdu, parse_keys, responses

TARGET = "iqn.2026-11.lan.bootsrv:disk"
INITIATOR = "iqn.2026-11.test:init"


def machine(**spec_kwargs) -> LoginMachine:
    directory = TargetDirectory()
    directory.add(TargetSpec(TARGET, device=None, **spec_kwargs))
    registry = SessionRegistry()
    return LoginMachine(directory, TargetLimits(),
                        lambda result: registry.bind(result, 0, lambda: None).tsih)


def step(m: LoginMachine, wire: bytes):
    reader = PduReader()
    reader.feed(wire)
    (reply,) = responses(m.handle(reader.next_pdu()))
    status = reply.login_status
    return reply, status, parse_keys(reply.data)


def test_login_without_auth_reaches_full_feature_with_negotiated_values():
    m = machine()
    reply, status, keys = step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}",
                                             "AuthMethod=None,CHAP"], csg=0, nsg=1))
    assert status == 0 and keys["AuthMethod"] == "None" and keys["TargetPortalGroupTag"] == "1"
    assert reply.flags & 0x80 and reply.flags & 3 == 1
    reply, status, keys = step(m, login_pdu(["HeaderDigest=None,CRC32C", "DataDigest=None",
                                             "MaxBurstLength=4194304", "FirstBurstLength=8192",
                                             "MaxRecvDataSegmentLength=131072", "InitialR2T=No",
                                             "ImmediateData=Yes", "ErrorRecoveryLevel=2", "MaxConnections=4",
                                             "X-vendor.key=1", "IFMarker=No", "DefaultTime2Wait=5"],
                                            csg=1, nsg=3))
    assert status == 0 and reply.flags & 3 == 3
    assert keys["HeaderDigest"] == "CRC32C" and keys["DataDigest"] == "None"
    assert keys["MaxBurstLength"] == "1048576"  # min(offer, ours)
    assert keys["FirstBurstLength"] == "8192" and keys["InitialR2T"] == "No"
    assert keys["ErrorRecoveryLevel"] == "0" and keys["MaxConnections"] == "1"
    assert keys["X-vendor.key"] == "NotUnderstood" and keys["IFMarker"] == "No"
    assert keys["DefaultTime2Wait"] == "5"
    assert "MaxRecvDataSegmentLength" in keys  # we declare ours
    assert m.result is not None and m.result.tsih != 0
    assert m.params.initiator_max_recv_data_segment_length == 131072
    assert reply.tsih == m.result.tsih


@pytest.mark.parametrize("keys,expected", [
    ([f"TargetName={TARGET}"], LoginStatus.MISSING_PARAMETER),
    ([f"InitiatorName={INITIATOR}"], LoginStatus.MISSING_PARAMETER),
    ([f"InitiatorName={INITIATOR}", "TargetName=iqn.2026-11.lan.bootsrv:none"], LoginStatus.NOT_FOUND),
    ([f"InitiatorName={INITIATOR}", "SessionType=Weird"], LoginStatus.SESSION_TYPE_NOT_SUPPORTED),
])
def test_login_failures_have_the_right_status(keys, expected):
    _, status, _ = step(machine(), login_pdu(keys + ["AuthMethod=None"]))
    assert status == expected


def test_acl_refuses_other_initiators():
    m = machine(initiators=frozenset({"iqn.2026-11.test:other"}))
    _, status, _ = step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=None"]))
    assert status == LoginStatus.AUTHORIZATION_FAILED


def _chap_login(m, secret: str, mutual: tuple[int, bytes] | None = None):
    _, status, keys = step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}",
                                         "AuthMethod=CHAP,None"], transit=False))
    assert status == 0 and keys["AuthMethod"] == "CHAP"
    _, status, keys = step(m, login_pdu(["CHAP_A=5"], transit=False))
    assert keys["CHAP_A"] == "5"
    ident, challenge = int(keys["CHAP_I"]), decode_binary(keys["CHAP_C"])
    answer = hashlib.md5(bytes([ident]) + secret.encode() + challenge).digest()
    extra = [f"CHAP_I={mutual[0]}", f"CHAP_C={encode_binary(mutual[1])}"] if mutual else []
    return step(m, login_pdu(["CHAP_N=alice", f"CHAP_R={encode_binary(answer)}"] + extra, nsg=1))


def test_chap_md5_right_and_wrong_secret():
    creds = Credentials("alice", "alice-secret-123")
    reply, status, _ = _chap_login(machine(chap=creds), "alice-secret-123")
    assert status == 0 and reply.flags & 0x80
    _, status, _ = _chap_login(machine(chap=creds), "wrong-secret-0000")
    assert status == LoginStatus.AUTH_FAILED


def test_chap_required_refuses_none_and_skipping_security():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    _, status, _ = step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=None"]))
    assert status == LoginStatus.AUTH_FAILED
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    _, status, _ = step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}"], csg=1, nsg=3))
    assert status == LoginStatus.AUTH_FAILED


def test_transit_withheld_until_chap_done():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    reply, status, _ = step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}",
                                          "AuthMethod=CHAP"], transit=True, nsg=1))
    assert status == 0 and not reply.flags & 0x80


def test_mutual_chap_answers_with_target_secret_and_refuses_reflection():
    creds, target_creds = Credentials("alice", "alice-secret-123"), Credentials("tgt", "target-secret-456")
    challenge = b"\x01" * 16
    _, status, keys = _chap_login(machine(chap=creds, mutual_chap=target_creds), "alice-secret-123",
                                  mutual=(77, challenge))
    assert status == 0 and keys["CHAP_N"] == "tgt"
    expected = hashlib.md5(bytes([77]) + b"target-secret-456" + challenge).digest()
    assert decode_binary(keys["CHAP_R"]) == expected
    # Without mutual credentials configured, a mutual request cannot be honoured.
    _, status, _ = _chap_login(machine(chap=creds), "alice-secret-123", mutual=(77, challenge))
    assert status == LoginStatus.AUTH_FAILED


def test_discovery_session_needs_no_target_name():
    m = machine()
    reply, status, _ = step(m, login_pdu([f"InitiatorName={INITIATOR}", "SessionType=Discovery",
                                          "AuthMethod=None"], nsg=3))
    assert status == 0 and m.result is not None and m.result.discovery


def test_unsupported_version_and_bad_stage():
    bad_version = bytearray(login_pdu([f"InitiatorName={INITIATOR}", "SessionType=Discovery"]))
    bad_version[3] = 2  # version-min
    assert step(machine(), bytes(bad_version))[1] == LoginStatus.UNSUPPORTED_VERSION
    assert step(machine(), login_pdu([f"InitiatorName={INITIATOR}"], csg=1, nsg=0))[1] == LoginStatus.INITIATOR_ERROR


def test_chap_sha256_chosen_in_initiator_order():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=CHAP"], transit=False))
    _, status, keys = step(m, login_pdu(["CHAP_A=7,5"], transit=False))
    assert keys["CHAP_A"] == "7" and len(decode_binary(keys["CHAP_C"])) == 32
    answer = hashlib.sha256(bytes([int(keys["CHAP_I"])]) + b"alice-secret-123"
                            + decode_binary(keys["CHAP_C"])).digest()
    _, status, _ = step(m, login_pdu(["CHAP_N=alice", f"CHAP_R=0b{__import__('base64').b64encode(answer).decode()}"]))
    assert status == 0  # base64 ("0b") encoding accepted too


def test_chap_unknown_algorithm_fails():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=CHAP"], transit=False))
    assert step(m, login_pdu(["CHAP_A=99"], transit=False))[1] == LoginStatus.AUTH_FAILED


@pytest.mark.parametrize("policy,offer,expected", [
    ("prefer", "None,CRC32C", "CRC32C"), ("initiator", "None,CRC32C", "None"),
    ("initiator", "CRC32C,None", "CRC32C"), ("off", "CRC32C,None", "None"), ("off", "CRC32C", "Reject"),
])
def test_digest_policy(policy, offer, expected):
    from target.iscsi.params import SessionParams, negotiate
    answers = dict(negotiate([("HeaderDigest", offer)], SessionParams(), TargetLimits(digests=policy),
                             discovery=False))
    assert answers["HeaderDigest"] == expected


# ---- the stage table: the CHAP exchange runs once ------------------------

def _authenticated_in_security(m: LoginMachine, secret: str = "alice-secret-123") -> None:
    """CHAP through to a verified response, every request without T: the login stays in security."""
    step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=CHAP"], transit=False))
    _, _, keys = step(m, login_pdu(["CHAP_A=5"], transit=False))
    answer = hashlib.md5(bytes([int(keys["CHAP_I"])]) + secret.encode() + decode_binary(keys["CHAP_C"])).digest()
    _, status, _ = step(m, login_pdu(["CHAP_N=alice", f"CHAP_R={encode_binary(answer)}"], transit=False))
    assert status == 0 and m._stage is Stage.AUTHENTICATED


@pytest.mark.parametrize("again", [["AuthMethod=CHAP"], ["AuthMethod=CHAP,None"], ["CHAP_A=5"],
                                   ["CHAP_N=alice", "CHAP_R=0x00"]])
def test_chap_exchange_cannot_be_restarted_after_it_succeeded(again):
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    _authenticated_in_security(m)
    reply, status, keys = step(m, login_pdu(again, transit=False))
    assert status == LoginStatus.INITIATOR_ERROR == 0x0200  # RFC 7143 6.2: a key negotiated twice
    assert m.failed == LoginStatus.INITIATOR_ERROR and m.result is None
    assert not reply.flags & 0x80 and (reply.flags >> 2) & 3 == 0 and keys == {}


def test_authmethod_is_agreed_once():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=CHAP"], transit=False))
    assert step(m, login_pdu(["AuthMethod=CHAP"], transit=False))[1] == LoginStatus.INITIATOR_ERROR
    m = machine()
    step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=None"], transit=False))
    assert step(m, login_pdu(["AuthMethod=None"]))[1] == LoginStatus.INITIATOR_ERROR


def test_chap_keys_out_of_order_are_initiator_errors():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=CHAP"], transit=False))
    assert step(m, login_pdu(["CHAP_N=alice", "CHAP_R=0x00"], transit=False))[1] == LoginStatus.INITIATOR_ERROR
    m = machine()
    assert step(m, login_pdu([f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=None",
                              "CHAP_A=5"], transit=False))[1] == LoginStatus.INITIATOR_ERROR


def test_after_chap_the_login_leaves_security_and_binds():
    m = machine(chap=Credentials("alice", "alice-secret-123"))
    _authenticated_in_security(m)
    reply, status, _ = step(m, login_pdu([], nsg=1))  # a request without keys may still ask to move on
    assert status == 0 and reply.flags & 0x80 and reply.flags & 3 == 1
    reply, status, _ = step(m, login_pdu([], csg=1, nsg=3))
    assert status == 0 and m.result is not None and m._stage is Stage.FULL_FEATURE
    assert step(m, login_pdu([], csg=1, nsg=3))[1] == LoginStatus.INITIATOR_ERROR  # nothing after binding


def test_stage_table():
    assert _MOVES[Stage.FULL_FEATURE] == {} and set(_MOVES) == set(Stage)
    # A request's CSG never goes back, and only the security stages take security keys.
    assert all(Step.IN_SECURITY not in _MOVES[s] for s in (Stage.OPERATIONAL, Stage.FULL_FEATURE))
    for auth_step in (Step.AUTH_NONE, Step.AUTH_CHAP, Step.CHAP_A, Step.CHAP_RESPONSE):
        (source,) = [s for s, moves in _MOVES.items() if auth_step in moves]  # each step from one stage only
        assert source.csg == 0
    # The exchange is a line: AuthMethod, CHAP_A, the response; nothing leads back into it.
    assert _MOVES[Stage.SECURITY][Step.AUTH_CHAP] is Stage.CHAP_A
    assert _MOVES[Stage.CHAP_A][Step.CHAP_A] is Stage.CHAP_RESPONSE
    assert _MOVES[Stage.CHAP_RESPONSE][Step.CHAP_RESPONSE] is Stage.AUTHENTICATED
    assert _MOVES[Stage.SECURITY][Step.AUTH_NONE] is Stage.AUTHENTICATED
    assert {s for s, moves in _MOVES.items() if Stage.SECURITY in moves.values()} == {Stage.START, Stage.SECURITY}
    assert {s for s, moves in _MOVES.items() if Stage.CHAP_A in moves.values()} == {Stage.SECURITY, Stage.CHAP_A}
    # Binding happens only where leaving security is allowed without an exchange in progress.
    assert {s for s, moves in _MOVES.items() if Step.BIND in moves} == {
        Stage.SECURITY, Stage.AUTHENTICATED, Stage.OPERATIONAL}
    assert [s.csg for s in Stage] == [0, 0, 0, 0, 0, 1, 3]


def test_a_first_request_split_over_pdus_is_identified_and_still_needs_chap():
    """The C bit may split the first request's text anywhere: the names it carries are read
    once the text is whole, so a target with CHAP still demands it."""
    text = [f"InitiatorName={INITIATOR}", f"TargetName={TARGET}", "AuthMethod=None"]
    whole = b"".join(k.encode() + b"\0" for k in text)
    cut = len(f"InitiatorName={INITIATOR}") + 7  # inside TargetName's value

    def split_login(m):
        reader = PduReader()
        for part, cont in ((whole[:cut], True), (whole[cut:], False)):
            bhs = wire.login_request(csg=0, nsg=1, transit=not cont, cont=cont, itt=1, cmdsn=1, tsih=0,
                                     isid=wire.DEFAULT_ISID)
            reader.feed(wire.frame(bhs, part))
            (reply,) = responses(m.handle(reader.next_pdu()))
        return reply

    m = machine(chap=Credentials("alice", "alice-secret-123"))
    assert split_login(m).login_status == LoginStatus.AUTH_FAILED
    m = machine()
    reply = split_login(m)
    assert reply.login_status == 0 and reply.flags & 0x80
    assert m._initiator == INITIATOR and m._target is not None and not m._discovery
