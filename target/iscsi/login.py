"""Login phase state machine (RFC 7143 sections 6 and 11.12-11.13), sans-IO.

Feed it Login Request PDUs; it answers with Login Response PDUs and ends in
success (identity, target, negotiated parameters) or failure (a status class
and detail, after which the connection is closed).

The stages are `Stage`, the security stage split by the steps of the CHAP
exchange (RFC 7143 12.1.3), and every move between them is in `_MOVES`: a step
with no move there is a protocol error, refused with Login reject "initiator
error" (0x0200, as 6.2 asks of a key negotiated twice). So AuthMethod is agreed
once, CHAP_A is answered once, and one challenge takes one response; nothing
restarts the exchange. `_NEXT_STAGES` says which NSG a request's CSG allows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum, IntEnum, auto
from typing import Callable

from target.iscsi import chap, params as p, wire
from target.iscsi.keys import KeyError_, encode_keys, parse_keys
from target.iscsi.pdu import Opcode, Pdu, encode
from target.iscsi.targets import TargetDirectory, TargetSpec

log = logging.getLogger("bootsrv.iscsi.login")

# The stage codes of RFC 7143 11.12.3 (CSG and NSG).
SECURITY, OPERATIONAL, FULL_FEATURE = 0, 1, 3


class Stage(Enum):
    """Where the login is."""

    START = auto()  # no request seen yet
    SECURITY = auto()  # security negotiation, AuthMethod not agreed yet
    CHAP_A = auto()  # AuthMethod=CHAP agreed: the initiator's CHAP_A awaited
    CHAP_RESPONSE = auto()  # our challenge sent: CHAP_N and CHAP_R awaited
    AUTHENTICATED = auto()  # still in security: AuthMethod=None agreed, or the CHAP response verified
    OPERATIONAL = auto()
    FULL_FEATURE = auto()  # the response that binds the session has been sent

    @property
    def csg(self) -> int:
        """The stage code a response in this stage carries (START answers as security)."""
        return _CSG.get(self, SECURITY)


_CSG = {Stage.OPERATIONAL: OPERATIONAL, Stage.FULL_FEATURE: FULL_FEATURE}


class Step(Enum):
    """What a request does, in the order it is applied."""

    IN_SECURITY = auto()  # a request with CSG security
    IN_OPERATIONAL = auto()  # a request with CSG operational (refused before authentication: 0x0201)
    AUTH_NONE = auto()  # AuthMethod answered None
    AUTH_CHAP = auto()  # AuthMethod answered CHAP
    CHAP_A = auto()  # CHAP_A answered with our challenge
    CHAP_RESPONSE = auto()  # CHAP_N and CHAP_R verified (and a mutual challenge answered)
    BIND = auto()  # the T bit to full feature granted: the session is bound


# The transition table: every move the login may make. A request's CSG may not
# go back; leaving security before authentication is over is refused apart:
# the T bit is withheld, and a request with CSG operational fails (0x0201).
_MOVES: dict[Stage, dict[Step, Stage]] = {
    Stage.START: {Step.IN_SECURITY: Stage.SECURITY, Step.IN_OPERATIONAL: Stage.OPERATIONAL},
    Stage.SECURITY: {Step.IN_SECURITY: Stage.SECURITY, Step.IN_OPERATIONAL: Stage.OPERATIONAL,
                     Step.AUTH_NONE: Stage.AUTHENTICATED, Step.AUTH_CHAP: Stage.CHAP_A, Step.BIND: Stage.FULL_FEATURE},
    Stage.CHAP_A: {Step.IN_SECURITY: Stage.CHAP_A, Step.IN_OPERATIONAL: Stage.OPERATIONAL,
                   Step.CHAP_A: Stage.CHAP_RESPONSE},
    Stage.CHAP_RESPONSE: {Step.IN_SECURITY: Stage.CHAP_RESPONSE, Step.IN_OPERATIONAL: Stage.OPERATIONAL,
                          Step.CHAP_RESPONSE: Stage.AUTHENTICATED},
    Stage.AUTHENTICATED: {Step.IN_SECURITY: Stage.AUTHENTICATED, Step.IN_OPERATIONAL: Stage.OPERATIONAL,
                          Step.BIND: Stage.FULL_FEATURE},
    Stage.OPERATIONAL: {Step.IN_OPERATIONAL: Stage.OPERATIONAL, Step.BIND: Stage.FULL_FEATURE},
    Stage.FULL_FEATURE: {},
}
_CSG_STEPS = {SECURITY: Step.IN_SECURITY, OPERATIONAL: Step.IN_OPERATIONAL}  # the step a request's CSG makes
# With the T bit a request names its next stage (NSG), which must be further on.
_NEXT_STAGES: dict[int, frozenset[int]] = {
    SECURITY: frozenset({OPERATIONAL, FULL_FEATURE}),
    OPERATIONAL: frozenset({FULL_FEATURE}),
}


class LoginStatus(IntEnum):
    """Status-Class << 8 | Status-Detail (RFC 7143 11.13.5)."""

    SUCCESS = 0x0000
    TARGET_MOVED_TEMPORARILY = 0x0101
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
    SERVICE_UNAVAILABLE = 0x0301
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
    _chap: chap.ChapChallenge | None = None  # the challenge of Stage.CHAP_RESPONSE
    _declared_mrdsl: bool = False
    _first_isid: bytes = b""
    _identified: bool = False  # the first request's names and session type are read
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

    def refuse_bound(self, pdu: Pdu, reason: str, moved_to: str = "") -> list[bytes | bytearray | memoryview]:
        """The answer to `pdu`, whose login bound a session that cannot be served after all (its
        target was not ours to claim): in place of the success response withheld, a redirect
        to the portal `moved_to` serving it, or a failure (service unavailable)."""
        status = LoginStatus.TARGET_MOVED_TEMPORARILY if moved_to else LoginStatus.SERVICE_UNAVAILABLE
        self.failed, self.result = status, None
        log.warning("login from %r %s (0x%04x): %s", self._initiator or "?",
                    f"sent to {moved_to}" if moved_to else "refused", status, reason)
        self._statsn = (self._statsn - 1) & 0xFFFFFFFF  # the withheld response's StatSN
        self._stage = Stage.OPERATIONAL if (pdu.flags >> 2) & 3 == OPERATIONAL else Stage.AUTHENTICATED
        target = self._target
        keys = [("TargetAddress", f"{moved_to},{target.portal_group_tag if target else 1}")] if moved_to else []
        return self._respond(pdu, transit=False, nsg=0, keys=keys, status=status)

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
        previous = self._stage
        stage = self._after(_CSG_STEPS.get(csg), f"current stage {csg}")
        if transit and nsg not in _NEXT_STAGES[csg]:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, f"bad transition {csg}->{nsg}")
        self._stage = stage
        entered_operational = stage is Stage.OPERATIONAL and previous is not Stage.OPERATIONAL

        self._pending_text += pdu.data
        if cont:  # more text follows: acknowledge with an empty response
            if entered_operational:
                self._require_authenticated(previous)
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
        if not self._identified:  # the first complete request, which may have come in several PDUs (C bit)
            self._identified = True
            answers += self._identify(pairs)
        if csg == SECURITY:
            answers += self._security(pairs)
        elif entered_operational:
            self._require_authenticated(previous)
        answers += p.negotiate(pairs, self.params, self.limits, discovery=self._discovery)
        if (csg == OPERATIONAL or (transit and nsg == FULL_FEATURE)) and not self._declared_mrdsl:
            self._declared_mrdsl = True
            self.params.target_max_recv_data_segment_length = self.limits.max_recv_data_segment_length
            answers.append(("MaxRecvDataSegmentLength", str(self.limits.max_recv_data_segment_length)))

        if transit and csg == SECURITY and not self._authenticated(self._stage):
            transit = False  # refuse to leave security until CHAP is finished
        tsih, after = 0, self._stage
        if transit and nsg == FULL_FEATURE:
            after = self._after(Step.BIND, "full feature phase")
            p.finish(self.params)
            result = LoginResult(self._initiator, self._alias, self._target, pdu.isid, 0, pdu.cid,
                                 self.params, self._statsn + 1, pdu.cmdsn)
            tsih = result.tsih = self.bind_session(result)
            self.result = result
        response = self._respond(pdu, transit=transit, nsg=nsg if transit else 0, keys=answers, tsih=tsih)
        self._stage = after
        return response

    def _after(self, step: Step | None, what: str) -> Stage:
        """The stage `step` leads to from this one; a step `_MOVES` lacks is a protocol error."""
        stage = _MOVES[self._stage].get(step) if step is not None else None
        if stage is None:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, f"{what} not allowed in stage {self._stage.name}")
        return stage

    def _authenticated(self, stage: Stage) -> bool:
        """Whether `stage` may leave security: the target needs no CHAP, or the exchange is over."""
        return stage is Stage.AUTHENTICATED or self._target is None or self._target.chap is None

    def _require_authenticated(self, previous: Stage) -> None:
        if not self._authenticated(previous):
            raise LoginFailed(LoginStatus.AUTH_FAILED, "target requires CHAP; initiator skipped security")

    def _identify(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        keys = dict(pairs)
        self._initiator = keys.get("InitiatorName", "")
        self._alias = keys.get("InitiatorAlias", "")
        if not self._initiator:
            raise LoginFailed(LoginStatus.MISSING_PARAMETER, "no InitiatorName")
        session_type = keys.get("SessionType", "Normal")
        if session_type == "Discovery":
            self._discovery = True  # no target, so no CHAP here; discovery shows only permitted targets
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
                method, step = "CHAP", Step.AUTH_CHAP
            elif not needs_chap and "None" in offered:
                method, step = "None", Step.AUTH_NONE
            else:
                raise LoginFailed(LoginStatus.AUTH_FAILED, f"AuthMethod offer {keys['AuthMethod']!r} unacceptable")
            self._stage = self._after(step, "AuthMethod")
            answers.append(("AuthMethod", method))
        if "CHAP_A" in keys:
            after = self._after(Step.CHAP_A, "CHAP_A")
            algorithm = chap.choose_algorithm(keys["CHAP_A"])
            if algorithm is None:
                raise LoginFailed(LoginStatus.AUTH_FAILED, f"no common CHAP algorithm in {keys['CHAP_A']!r}")
            self._chap = chap.ChapChallenge.new(algorithm)
            self._stage = after
            answers += [("CHAP_A", str(algorithm)), ("CHAP_I", str(self._chap.identifier)),
                        ("CHAP_C", chap.encode_binary(self._chap.challenge))]
        if "CHAP_R" in keys or "CHAP_N" in keys:
            after = self._after(Step.CHAP_RESPONSE, "CHAP response")
            answers += self._verify_chap(keys)
            self._stage = after
        return answers

    def _verify_chap(self, keys: dict[str, str]) -> list[tuple[str, str]]:
        target = self._target
        if self._chap is None or target is None or target.chap is None:
            raise LoginFailed(LoginStatus.INITIATOR_ERROR, "CHAP response without a challenge")
        challenge, self._chap = self._chap, None  # one answer per challenge (and the table allows one)
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
        return answers

    def _respond(self, pdu: Pdu, *, transit: bool, nsg: int, keys: list[tuple[str, str]],
                 status: LoginStatus = LoginStatus.SUCCESS, tsih: int = 0) -> list[bytes | bytearray | memoryview]:
        csg = self._stage.csg  # a first request refused before its stage was read: security
        flags = (0x80 if transit else 0) | (csg << 2) | (nsg if transit else 0)
        bhs = wire.login_response(flags, pdu.isid, tsih, pdu.itt, self._statsn & 0xFFFFFFFF, pdu.cmdsn,
                                  (pdu.cmdsn + self.queue_depth - 1) & 0xFFFFFFFF, status)
        self._statsn = (self._statsn + 1) & 0xFFFFFFFF
        # A redirection (status class 1) carries the TargetAddress to go to; other failures no keys.
        return encode(bhs, encode_keys(keys) if status == LoginStatus.SUCCESS or status >> 8 == 1 else b"")
