"""Operational parameter negotiation (RFC 7143 sections 6.2 and 13).

The initiator offers; the target answers every negotiated key it was offered
with the result, or NotUnderstood / Reject / Irrelevant. Declarative keys get
no answer. The result is a `SessionParams` both sides then obey.
"""

from __future__ import annotations

from dataclasses import dataclass

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


_NUMERIC_MIN = {  # key: (attribute, low, high, our limit attribute or None)
    "MaxBurstLength": ("max_burst_length", 512, (1 << 24) - 1, "max_burst_length"),
    "FirstBurstLength": ("first_burst_length", 512, (1 << 24) - 1, "first_burst_length"),
    "MaxOutstandingR2T": ("max_outstanding_r2t", 1, 65535, "max_outstanding_r2t"),
    "MaxConnections": ("max_connections", 1, 65535, "max_connections"),
    "DefaultTime2Retain": ("default_time2retain", 0, 3600, None),
    "ErrorRecoveryLevel": ("error_recovery_level", 0, 2, None),
}
_BOOLEANS = {"InitialR2T": "initial_r2t", "DataPDUInOrder": "data_pdu_in_order",
             "DataSequenceInOrder": "data_sequence_in_order", "ImmediateData": "immediate_data"}
# Keys handled by the login machine itself (security phase and identity).
LOGIN_KEYS = frozenset({"InitiatorName", "InitiatorAlias", "TargetName", "SessionType", "AuthMethod",
                        "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"})
# RFC 3720 marker keys, removed by RFC 7143; old initiators still offer "No".
_MARKER_BOOLS = frozenset({"IFMarker", "OFMarker"})
_MARKER_INTERVALS = frozenset({"IFMarkInt", "OFMarkInt"})


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


def _negotiate_one(key: str, value: str, params: SessionParams, limits: TargetLimits,
                   discovery: bool) -> str | None:
    if key in ("HeaderDigest", "DataDigest"):
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
        setattr(params, "header_digest" if key == "HeaderDigest" else "data_digest", choice == "CRC32C")
        return choice
    if key == "MaxRecvDataSegmentLength":  # declarative: remember, do not answer
        number = _parse_number(value, 512, (1 << 24) - 1)
        if number is None:
            return REJECT
        params.initiator_max_recv_data_segment_length = number
        return None
    if key in _NUMERIC_MIN:
        attr, low, high, limit_attr = _NUMERIC_MIN[key]
        number = _parse_number(value, low, high)
        if number is None:
            return REJECT
        if key == "ErrorRecoveryLevel":
            result = 0  # we implement ERL 0 only, as Windows' target does
        elif limit_attr is None:
            result = min(number, getattr(params, attr))
        else:
            result = min(number, getattr(limits, limit_attr))
        if discovery and key in ("MaxBurstLength", "FirstBurstLength", "MaxOutstandingR2T", "MaxConnections"):
            return IRRELEVANT
        setattr(params, attr, result)
        return str(result)
    if key == "DefaultTime2Wait":
        number = _parse_number(value, 0, 3600)
        if number is None:
            return REJECT
        params.default_time2wait = max(number, params.default_time2wait)
        return str(params.default_time2wait)
    if key in _BOOLEANS:
        flag = _parse_bool(value)
        if flag is None:
            return REJECT
        if discovery:
            return IRRELEVANT
        # We accept unsolicited, immediate and out-of-order data (Data-Out is
        # placed by buffer offset), so for these OR/AND keys the offer decides.
        setattr(params, _BOOLEANS[key], flag)
        return "Yes" if flag else "No"
    if key in _MARKER_BOOLS:
        return "No"
    if key in _MARKER_INTERVALS:
        return IRRELEVANT
    if key == "iSCSIProtocolLevel":  # RFC 7144: we speak RFC 7143 (level 1)
        number = _parse_number(value, 0, 31)
        return REJECT if number is None else str(min(number, 1))
    if key == "TaskReporting":  # RFC 7144
        return "RFC3720"
    return NOT_UNDERSTOOD


def finish(params: SessionParams) -> None:
    """Constraints between keys that only hold once all offers are in."""
    if params.first_burst_length > params.max_burst_length:
        params.first_burst_length = params.max_burst_length
