"""CHAP for iSCSI login (RFC 1994 as profiled by RFC 7143 section 12.1.3).

Response = H(identifier || secret || challenge). Binary values travel as
"0x<hex>" or "0b<base64>". Algorithms: 5 = MD5 (RFC 7143), 6 = SHA-1,
7 = SHA-256, 8 = SHA3-256 (the later registrations open-iscsi also speaks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

ALGORITHMS: dict[int, str] = {7: "sha256", 8: "sha3_256", 6: "sha1", 5: "md5"}


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    secret: str


class ChapError(ValueError):
    pass


def decode_binary(value: str) -> bytes:
    try:
        if value[:2].lower() == "0x":
            digits = value[2:]
            if len(digits) % 2:
                digits = "0" + digits
            return binascii.unhexlify(digits)
        if value[:2].lower() == "0b":
            return base64.b64decode(value[2:], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChapError(f"bad CHAP binary value {value[:40]!r}") from exc
    raise ChapError(f"CHAP binary value without 0x/0b prefix: {value[:40]!r}")


def encode_binary(value: bytes) -> str:
    return "0x" + value.hex()


def chap_response(algorithm: int, identifier: int, secret: str, challenge: bytes) -> bytes:
    digest = hashlib.new(ALGORITHMS[algorithm])
    digest.update(bytes((identifier & 0xFF,)))
    digest.update(secret.encode("utf-8"))
    digest.update(challenge)
    return digest.digest()


def choose_algorithm(offer: str) -> int | None:
    """The first algorithm in the initiator's list that we support."""
    for item in offer.split(","):
        try:
            code = int(item.strip())
        except ValueError:
            continue
        if code in ALGORITHMS:
            return code
    return None


@dataclass(slots=True)
class ChapChallenge:
    """One target-issued challenge, remembered until the initiator answers."""

    algorithm: int
    identifier: int
    challenge: bytes

    @classmethod
    def new(cls, algorithm: int) -> "ChapChallenge":
        return cls(algorithm, secrets.randbelow(256), secrets.token_bytes(32 if algorithm != 5 else 16))

    def verify(self, credentials: Credentials, name: str, response: bytes) -> bool:
        expected = chap_response(self.algorithm, self.identifier, credentials.secret, self.challenge)
        name_ok = hmac.compare_digest(name.encode(), credentials.user.encode())
        return hmac.compare_digest(expected, response) and name_ok
