"""Text key=value pairs of Login and Text PDUs (RFC 7143 6.1)."""

from __future__ import annotations

MAX_KEY_LEN = 63


class KeyError_(ValueError):
    """Malformed text data (not a missing dict key)."""


def parse_keys(data: bytes) -> list[tuple[str, str]]:
    """Parse NUL-separated key=value pairs, keeping order and duplicates."""
    pairs: list[tuple[str, str]] = []
    for item in data.split(b"\0"):
        if not item:
            continue
        key, sep, value = item.partition(b"=")
        if not sep:
            raise KeyError_(f"text item without '=': {item[:64]!r}")
        try:
            key_s, value_s = key.decode("utf-8"), value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise KeyError_(f"text item is not UTF-8: {item[:64]!r}") from exc
        if not key_s or len(key_s) > MAX_KEY_LEN:
            raise KeyError_(f"bad key name {key_s[:80]!r}")
        pairs.append((key_s, value_s))
    return pairs


def encode_keys(pairs: list[tuple[str, str]]) -> bytes:
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)
