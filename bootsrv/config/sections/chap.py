"""CHAP credentials, an inline table in [[target]] and [[client]]."""

from __future__ import annotations

from bootsrv.config.model import ChapConfig
from bootsrv.config.reader import Section


def parse(section: Section, name: str) -> ChapConfig | None:
    raw = section.get(name, dict, '{ user = "...", secret = "..." }')
    if raw is None:
        return None
    sub = Section(section.file, section.key(name), raw)
    user = sub.get("user", str, "a user name", required=True)
    secret = sub.get("secret", str, "a secret of 12 to 255 characters", required=True)
    sub.done()
    if not user:
        sub.fail("user", "a non-empty user name")
    if not 12 <= len(secret) <= 255:
        sub.fail("secret", "a secret of 12 to 255 characters (RFC 7143 asks for at least 96 bits)",
                 f"{len(secret)} characters")
    return ChapConfig(user, secret)
