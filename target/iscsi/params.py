"""Operational parameter negotiation (RFC 7143 sections 6.2 and 13).

The initiator offers; the target answers every negotiated key it was offered
with the result, or NotUnderstood / Reject / Irrelevant. Declarative keys get
no answer. The result is a `SessionParams` both sides then obey.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

NOT_UNDERSTOOD = "NotUnderstood"
REJECT = "Reject"
IRRELEVANT = "Irrelevant"
# Commands one session may have outstanding: the width of the CmdSN window
# (MaxCmdSN - ExpCmdSN + 1) the target grants. bootsrv's [iscsi] queue_depth overrides it.
DEFAULT_QUEUE_DEPTH = 64


@dataclass(frozen=True, slots=True)
class TargetLimits:
    """What this target accepts; results never exceed these."""

    max_recv_data_segment_length: int = 262144
    max_burst_length: int = 1048576
    first_burst_length: int = 262144
    max_outstanding_r2t: int = 8
    max_connections: int = 1
    # "prefer": CRC32C whenever the initiator lists it (LIO's choice; libiscsi and
    # qemu offer "None,CRC32C" by default); "initiator": the offer's order decides
    # (tgt's choice); "off": never.
    digests: str = "prefer"


@dataclass(slots=True)
class SessionParams:
    """Negotiated values; defaults are the RFC 7143 defaults."""

    header_digest: bool = False
    data_digest: bool = False
    # The initiator's declared receive limit: caps our Data-In / Text / Login segments.
    initiator_max_recv_data_segment_length: int = 8192
    # Ours, as declared to the initiator: caps its Data-Out / immediate data.
    target_max_recv_data_segment_length: int = 8192
    max_burst_length: int = 262144
    first_burst_length: int = 65536
    initial_r2t: bool = True
    immediate_data: bool = True
    max_outstanding_r2t: int = 1
    data_pdu_in_order: bool = True
    data_sequence_in_order: bool = True
    error_recovery_level: int = 0
    default_time2wait: int = 2
    default_time2retain: int = 20
    max_connections: int = 1


def _parse_bool(value: str) -> bool | None:
    return {"Yes": True, "No": False}.get(value)


def _parse_number(value: str, low: int, high: int) -> int | None:
    try:
        number = int(value, 0) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None
    return number if low <= number <= high else None


# A rule answers one offer: (its key, the offered value, the session's values so far, our limits).
# It returns the answer, or None for a declarative key (remembered, not answered).
Rule = Callable[["Key", str, SessionParams, TargetLimits], "str | None"]


@dataclass(frozen=True, slots=True)
class Key:
    """One operational key (tgt's usr/iscsi/param.c table): the SessionParams attribute it
    sets (whose field default is the RFC 7143 default), its legal range [low, high], and
    the rule that answers an offer. `limit` names the TargetLimits attribute that caps
    the result. Keys `irrelevant_in_discovery` are answered Irrelevant in a discovery
    session, once the offer has been checked."""

    name: str
    rule: Rule
    attr: str = ""
    low: int = 0
    high: int = 0
    limit: str = ""
    irrelevant_in_discovery: bool = False


def _digest(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    offered = [v.strip() for v in value.split(",")]
    if limits.digests == "prefer":
        order = ["CRC32C", "None"]
    elif limits.digests == "off":
        order = ["None"]
    else:
        order = offered
    choice = next((v for v in order if v in offered and v in ("CRC32C", "None")), None)
    if choice is None:
        return REJECT
    setattr(params, key.attr, choice == "CRC32C")
    return choice


def _declared(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    number = _parse_number(value, key.low, key.high)
    if number is None:
        return REJECT
    setattr(params, key.attr, number)
    return None


def _minimum(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    """The smaller of the offer and our limit (or, without one, the current value)."""
    number = _parse_number(value, key.low, key.high)
    if number is None:
        return REJECT
    result = min(number, getattr(limits, key.limit) if key.limit else getattr(params, key.attr))
    setattr(params, key.attr, result)
    return str(result)


def _maximum(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    number = _parse_number(value, key.low, key.high)
    if number is None:
        return REJECT
    setattr(params, key.attr, max(number, getattr(params, key.attr)))
    return str(getattr(params, key.attr))


def _erl0(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    """We implement ERL 0 only, as Windows' target does: any valid offer gets 0."""
    if _parse_number(value, key.low, key.high) is None:
        return REJECT
    setattr(params, key.attr, 0)
    return "0"


def _offer_decides(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    # We accept unsolicited, immediate and out-of-order data (Data-Out is
    # placed by buffer offset), so for these OR/AND keys the offer decides.
    flag = _parse_bool(value)
    if flag is None:
        return REJECT
    setattr(params, key.attr, flag)
    return "Yes" if flag else "No"


def _constant(answer: str) -> Rule:
    return lambda key, value, params, limits: answer


def _protocol_level(key: Key, value: str, params: SessionParams, limits: TargetLimits) -> str | None:
    number = _parse_number(value, key.low, key.high)  # RFC 7144: we speak RFC 7143 (level 1)
    return REJECT if number is None else str(min(number, 1))


_MAX_LENGTH = (1 << 24) - 1
KEYS: dict[str, Key] = {key.name: key for key in (
    Key("HeaderDigest", _digest, "header_digest"),
    Key("DataDigest", _digest, "data_digest"),
    Key("MaxRecvDataSegmentLength", _declared, "initiator_max_recv_data_segment_length", 512, _MAX_LENGTH),
    Key("MaxBurstLength", _minimum, "max_burst_length", 512, _MAX_LENGTH, "max_burst_length", True),
    Key("FirstBurstLength", _minimum, "first_burst_length", 512, _MAX_LENGTH, "first_burst_length", True),
    Key("MaxOutstandingR2T", _minimum, "max_outstanding_r2t", 1, 65535, "max_outstanding_r2t", True),
    Key("MaxConnections", _minimum, "max_connections", 1, 65535, "max_connections", True),
    Key("DefaultTime2Retain", _minimum, "default_time2retain", 0, 3600),
    Key("DefaultTime2Wait", _maximum, "default_time2wait", 0, 3600),
    Key("ErrorRecoveryLevel", _erl0, "error_recovery_level", 0, 2),
    Key("InitialR2T", _offer_decides, "initial_r2t", irrelevant_in_discovery=True),
    Key("ImmediateData", _offer_decides, "immediate_data", irrelevant_in_discovery=True),
    Key("DataPDUInOrder", _offer_decides, "data_pdu_in_order", irrelevant_in_discovery=True),
    Key("DataSequenceInOrder", _offer_decides, "data_sequence_in_order", irrelevant_in_discovery=True),
    # RFC 3720 marker keys, removed by RFC 7143; old initiators still offer "No".
    Key("IFMarker", _constant("No")),
    Key("OFMarker", _constant("No")),
    Key("IFMarkInt", _constant(IRRELEVANT)),
    Key("OFMarkInt", _constant(IRRELEVANT)),
    Key("iSCSIProtocolLevel", _protocol_level, low=0, high=31),
    Key("TaskReporting", _constant("RFC3720")),  # RFC 7144
)}
# Keys handled by the login machine itself (security phase and identity).
LOGIN_KEYS = frozenset({"InitiatorName", "InitiatorAlias", "TargetName", "SessionType", "AuthMethod",
                        "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"})


def negotiate(pairs: list[tuple[str, str]], params: SessionParams, limits: TargetLimits,
              *, discovery: bool) -> list[tuple[str, str]]:
    """Apply the initiator's operational offers; return our answers in order."""
    answers: list[tuple[str, str]] = []
    for key, value in pairs:
        if key in LOGIN_KEYS:
            continue
        answer = _negotiate_one(key, value, params, limits, discovery)
        if answer is not None:
            answers.append((key, answer))
    return answers


def _negotiate_one(name: str, value: str, params: SessionParams, limits: TargetLimits,
                   discovery: bool) -> str | None:
    key = KEYS.get(name)
    if key is None:
        return NOT_UNDERSTOOD
    if discovery and key.irrelevant_in_discovery:
        # Checked first, so a bad value is still refused, and nothing is changed.
        scratch = SessionParams()
        answer = key.rule(key, value, scratch, limits)
        return REJECT if answer == REJECT else IRRELEVANT
    return key.rule(key, value, params, limits)


def finish(params: SessionParams) -> None:
    """Constraints between keys that only hold once all offers are in."""
    if params.first_burst_length > params.max_burst_length:
        params.first_burst_length = params.max_burst_length
