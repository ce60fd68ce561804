"""The closed sets of words the configuration accepts, as `StrEnum`s.

Members are `str`s equal to their TOML spelling, so code that compares with the
bare strings (`config.dhcp.mode == "proxy"`), formats them or sends them as JSON
keeps working, and models built with plain strings (tests, old callers) compare
equal to parsed ones. The error messages list the choices in declaration order.
"""

from __future__ import annotations

from enum import StrEnum


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Digests(StrEnum):
    """CRC32C header/data digests: offer them, take them only if the initiator asks, or refuse."""
    PREFER = "prefer"
    INITIATOR = "initiator"
    OFF = "off"


class DhcpMode(StrEnum):
    FULL = "full"  # we hand out addresses from the pool
    PROXY = "proxy"  # another server hands out addresses; we add the boot options
    OFF = "off"


class UnknownClients(StrEnum):
    """What DHCP does for a MAC no [[client]] names; any other value is an [[image]] name to adopt it with."""
    IGNORE = "ignore"
    LEASE = "lease"  # an address, no boot options: printers, laptops

    @classmethod
    def is_word(cls, value: str) -> bool:
        return value in cls._value2member_map_

    @classmethod
    def of(cls, value: str) -> str:
        """The member `value` spells, else `value` itself (an image name)."""
        return cls(value) if cls.is_word(value) else value


class ImageUpdate(StrEnum):
    """What a persistent client does at power-on when its image has a newer current version."""
    KEEP = "keep"  # stays on its version, changes and all, until `client reset`
    RESET = "reset"  # its changes are discarded and it starts from the current version


class ExportMode(StrEnum):
    """What a scheduled snapshot writes to snapshots.export_dir."""
    NONE = "none"
    FULL = "full"
    INCREMENTAL = "incremental"


def listed(choices: type[StrEnum]) -> str:
    """'"a", "b", "c"': the choices, quoted, in declaration order."""
    return ", ".join(f'"{member.value}"' for member in choices)


def spelled(choices: type[StrEnum]) -> str:
    """'"a", "b" or "c"': the choices as most error messages list them."""
    *rest, last = listed(choices).split(", ")
    return f"{', '.join(rest)} or {last}"
