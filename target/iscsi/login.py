"""Login phase state machine (RFC 7143 sections 6 and 11.12-11.13), sans-IO.

Feed it Login Request PDUs; it answers with Login Response PDUs and ends in
success (identity, target, negotiated parameters) or failure (a status class
and detail, after which the connection is closed).

The stages are `Stage`, and the moves between them the two tables below it.
Authentication is tracked apart from the stage (`_auth_done`, and the CHAP
exchange: `_awaiting_chap_a`, then the challenge in `_chap`), because an
initiator may send AuthMethod and CHAP keys again within the security stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Callable

from target.iscsi import chap, params as p, wire
from target.iscsi.keys import KeyError_, encode_keys, parse_keys
from target.iscsi.pdu import Opcode, Pdu, encode
from target.iscsi.targets import TargetDirectory, TargetSpec

log = logging.getLogger("bootsrv.iscsi.login")

class Stage(IntEnum):
    """Where the login is; the values are the CSG/NSG codes of RFC 7143 11.12.3."""

    START = -1  # no request seen yet
    SECURITY = 0
    OPERATIONAL = 1
    FULL_FEATURE = 3  # the response that binds the session has been sent


SECURITY, OPERATIONAL, FULL_FEATURE = Stage.SECURITY, Stage.OPERATIONAL, Stage.FULL_FEATURE
# The transition table. A request names its current stage (CSG), which may not
# go back; with the T bit it names the next (NSG), which must be further on.
# Leaving SECURITY also waits for authentication (the T bit is refused until then).
_CURRENT_STAGES: dict[Stage, frozenset[int]] = {
    Stage.START: frozenset({SECURITY, OPERATIONAL}),
    Stage.SECURITY: frozenset({SECURITY, OPERATIONAL}),
    Stage.OPERATIONAL: frozenset({OPERATIONAL}),
}
_NEXT_STAGES: dict[int, frozenset[int]] = {
    SECURITY: frozenset({OPERATIONAL, FULL_FEATURE}),
    OPERATIONAL: frozenset({FULL_FEATURE}),
}


class LoginStatus(IntEnum):
    """Status-Class << 8 | Status-Detail (RFC 7143 11.13.5)."""

    SUCCESS = 0x0000
    INITIATOR_ERROR = 0x0200
    AUTH_FAILED = 0x0201
    AUTHORIZATION_FAILED = 0x0202
    NOT_FOUND = 0x0203
    UNSUPPORTED_VERSION = 0x0205
    MISSING_PARAMETER = 0x0207
    CANT_INCLUDE_IN_SESSION = 0x0208
    SESSION_TYPE_NOT_SUPPORTED = 0x0209
    SESSION_DOES_NOT_EXIST = 0x020A
    INVALID_DURING_LOGIN = 0x020B
    TARGET_ERROR = 0x0300
    OUT_OF_RESOURCES = 0x0302


class LoginFailed(Exception):
    def __init__(self, status: LoginStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class LoginResult:
    initiator_name: str
    initiator_alias: str
    target: TargetSpec | None  # None for a discovery session
    isid: bytes
    tsih: int
    cid: int
    params: p.SessionParams
    statsn: int  # next StatSN for the connection
    expcmdsn: int  # CmdSN the first full-feature command will carry

    @property
    def discovery(self) -> bool:
        return self.target is None


# Called once every key is agreed: returns the session's TSIH or raises LoginFailed.
SessionBinder = Callable[[LoginResult], int]


@dataclass(slots=True)
class LoginMachine:
    directory: TargetDirectory
    limits: p.TargetLimits
    bind_session: SessionBinder
    queue_depth: int = p.DEFAULT_QUEUE_DEPTH
    params: p.SessionParams = field(default_factory=p.SessionParams)
    result: LoginResult | None = None
    failed: LoginStatus | None = None
    _stage: Stage = Stage.START
    _statsn: int = 0
    _pending_text: bytearray = field(default_factory=bytearray)
    _initiator: str = ""
    _alias: str = ""
    _target: TargetSpec | None = None
    _discovery: bool = False
    _auth_done: bool = False
    _chap: chap.ChapChallenge | None = None
    _awaiting_chap_a: bool = False
    _declared_mrdsl: bool = False
    _first_isid: bytes = b""
    requested_tsih: int = 0  # TSIH of the first request: non-zero adds to an existing session

    def handle(self, pdu: Pdu) -> list[bytes | bytearray | memoryview]:
        """Process one Login Request; return the framed response."""
        try:
            return self._handle(pdu)
        except LoginFailed as failure:
            self.failed = failure.status
            log.warning("login from %r refused (0x%04x): %s", self._initiator or "?", failure.status,
                        failure.reason)
            return self._respond(pdu, transit=False, nsg=0, keys=[], status=failure.status)

    def _handle(self, pdu: Pdu) -> list[bytes | bytearray | memoryview]:
        if pdu.opcode != Opcode.LOGIN_REQUEST:
            raise LoginFailed(LoginStatus.INVALID_DURING_LOGIN, f"opcode 0x{pdu.opcode:02x} during login")
        first = self._stage is Stage.START
        if first:
            if pdu.version_min > 0:
                raise LoginFailed(LoginStatus.UNSUPPORTED_VERSION, f"version-min {pdu.version_min}")
            self._statsn = pdu.expstatsn
            self._first_isid, self.requested_tsih = pdu.isid, pdu.tsih
        elif pdu.isid != self._first_isid or pdu.tsih != self.requested_tsih:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, "ISID/TSIH changed during login")
        flags = pdu.flags
        transit, cont = bool(flags & 0x80), bool(flags & 0x40)
        csg, nsg = (flags >> 2) & 3, flags & 3
        if transit and cont:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, "T and C both set")
        if csg not in _CURRENT_STAGES.get(self._stage, ()):
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, f"bad current stage {csg}")
        if transit and nsg not in _NEXT_STAGES[csg]:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, f"bad transition {csg}->{nsg}")
        self._stage = Stage(csg)

        self._pending_text += pdu.data
        if cont:  # more text follows: acknowledge with an empty response
            return self._respond(pdu, transit=False, nsg=0, keys=[])
        text, self._pending_text = bytes(self._pending_text), bytearray()
        try:
            pairs = parse_keys(text)
        except KeyError_ as exc:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, str(exc)) from exc

        if log.isEnabledFor(logging.DEBUG):
            log.debug("login stage %d offer: %s", csg,
                      ", ".join(f"{k}={'...' if k.startswith('CHAP_') else v}" for k, v in pairs))
        answers: list[tuple[str, str]] = []
        if first:
            answers += self._identify(pairs)
        if csg == SECURITY:
            answers += self._security(pairs)
        elif self._target is not None and self._target.chap is not None and not self._auth_done:
            raise LoginFailed(LoginStatus.AUTH_FAILED, "target requires CHAP; initiator skipped security")
        else:
            self._auth_done = True
        answers += p.negotiate(pairs, self.params, self.limits, discovery=self._discovery)
        if (csg == OPERATIONAL or (transit and nsg == FULL_FEATURE)) and not self._declared_mrdsl:
            self._declared_mrdsl = True
            self.params.target_max_recv_data_segment_length = self.limits.max_recv_data_segment_length
            answers.append(("MaxRecvDataSegmentLength", str(self.limits.max_recv_data_segment_length)))

        if transit and csg == SECURITY and not self._auth_done:
            transit = False  # refuse to leave security until CHAP is finished
        tsih = 0
        if transit and nsg == FULL_FEATURE:
            p.finish(self.params)
            result = LoginResult(self._initiator, self._alias, self._target, pdu.isid, 0, pdu.cid,
                                 self.params, self._statsn + 1, pdu.cmdsn)
            tsih = result.tsih = self.bind_session(result)
            self.result = result
        response = self._respond(pdu, transit=transit, nsg=nsg if transit else 0, keys=answers, tsih=tsih)
        if self.result is not None:
            self._stage = Stage.FULL_FEATURE
        return response

    def _identify(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        keys = dict(pairs)
        self._initiator = keys.get("InitiatorName", "")
        self._alias = keys.get("InitiatorAlias", "")
        if not self._initiator:
            raise LoginFailed(LoginStatus.MISSING_PARAMETER, "no InitiatorName")
        session_type = keys.get("SessionType", "Normal")
        if session_type == "Discovery":
            self._discovery = True
            self._auth_done = True  # discovery needs no CHAP here; it shows only permitted targets
            return []
        if session_type != "Normal":
            raise LoginFailed(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, f"SessionType={session_type}")
        name = keys.get("TargetName")
        if not name:
            raise LoginFailed(LoginStatus.MISSING_PARAMETER, "no TargetName in a normal session")
        target = self.directory.find(name)
        if target is None:
            raise LoginFailed(LoginStatus.NOT_FOUND, f"no target {name!r}")
        if not target.allows(self._initiator):
            raise LoginFailed(LoginStatus.AUTHORIZATION_FAILED,
                              f"initiator {self._initiator!r} is not allowed on {target.name}")
        self._target = target
        self._auth_done = target.chap is None
        declared = [("TargetPortalGroupTag", str(target.portal_group_tag))]
        if target.alias:
            declared.append(("TargetAlias", target.alias))
        return declared

    def _security(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        keys = dict(pairs)
        answers: list[tuple[str, str]] = []
        needs_chap = self._target is not None and self._target.chap is not None
        if "AuthMethod" in keys:
            offered = [m.strip() for m in keys["AuthMethod"].split(",")]
            if needs_chap and "CHAP" in offered:
                answers.append(("AuthMethod", "CHAP"))
                self._awaiting_chap_a = True
            elif not needs_chap and "None" in offered:
                answers.append(("AuthMethod", "None"))
            else:
                raise LoginFailed(LoginStatus.AUTH_FAILED, f"AuthMethod offer {keys['AuthMethod']!r} unacceptable")
        if "CHAP_A" in keys:
            if not self._awaiting_chap_a:
                raise LoginFailed(LoginStatus.INITIATOR_ERROR, "CHAP_A without AuthMethod=CHAP")
            algorithm = chap.choose_algorithm(keys["CHAP_A"])
            if algorithm is None:
                raise LoginFailed(LoginStatus.AUTH_FAILED, f"no common CHAP algorithm in {keys['CHAP_A']!r}")
            self._awaiting_chap_a = False
            self._chap = chap.ChapChallenge.new(algorithm)
            answers += [("CHAP_A", str(algorithm)), ("CHAP_I", str(self._chap.identifier)),
                        ("CHAP_C", chap.encode_binary(self._chap.challenge))]
        if "CHAP_R" in keys or "CHAP_N" in keys:
            answers += self._verify_chap(keys)
        return answers

    def _verify_chap(self, keys: dict[str, str]) -> list[tuple[str, str]]:
        target = self._target
        if self._chap is None or target is None or target.chap is None:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, "CHAP response without a challenge")
        challenge, self._chap = self._chap, None  # one answer per challenge
        try:
            response = chap.decode_binary(keys.get("CHAP_R", ""))
        except chap.ChapError as exc:
            raise LoginFailed(LoginStatus.AUTH_FAILED, str(exc)) from exc
        if not challenge.verify(target.chap, keys.get("CHAP_N", ""), response):
            raise LoginFailed(LoginStatus.AUTH_FAILED, f"CHAP response for user {keys.get('CHAP_N', '')!r} is wrong")
        answers: list[tuple[str, str]] = []
        if "CHAP_I" in keys or "CHAP_C" in keys:  # the initiator wants us to prove ourselves
            if target.mutual_chap is None:
                raise LoginFailed(LoginStatus.AUTH_FAILED, "mutual CHAP asked for but not configured")
            try:
                identifier = int(keys.get("CHAP_I", ""), 0)
                their_challenge = chap.decode_binary(keys.get("CHAP_C", ""))
            except (ValueError, chap.ChapError) as exc:
                raise LoginFailed(LoginStatus.AUTH_FAILED, f"bad mutual CHAP challenge: {exc}") from exc
            if their_challenge == challenge.challenge or not their_challenge or not 0 <= identifier <= 255:
                raise LoginFailed(LoginStatus.AUTH_FAILED, "mutual CHAP challenge refused (reflected or empty)")
            ours = chap.chap_response(challenge.algorithm, identifier, target.mutual_chap.secret, their_challenge)
            answers += [("CHAP_N", target.mutual_chap.user), ("CHAP_R", chap.encode_binary(ours))]
        self._auth_done = True
        return answers

    def _respond(self, pdu: Pdu, *, transit: bool, nsg: int, keys: list[tuple[str, str]],
                 status: LoginStatus = LoginStatus.SUCCESS, tsih: int = 0) -> list[bytes | bytearray | memoryview]:
        csg = max(self._stage, SECURITY)  # a first request refused before its stage was read: security
        flags = (0x80 if transit else 0) | (csg << 2) | (nsg if transit else 0)
        bhs = wire.login_response(flags, pdu.isid, tsih, pdu.itt, self._statsn & 0xFFFFFFFF, pdu.cmdsn,
                                  (pdu.cmdsn + self.queue_depth - 1) & 0xFFFFFFFF, status)
        self._statsn = (self._statsn + 1) & 0xFFFFFFFF
        return encode(bhs, encode_keys(keys) if status == LoginStatus.SUCCESS else b"")
