"""Reading TOML tables with errors that name the file, the key and what was expected.

Every parser reads its table through a `Section`, so every message has one shape:
`<file>: <key path>: expected <what>[, got <value>]`, on one line (tests pin many of
them). `Section.done()` rejects keys nobody read, so a misspelt key is an error
rather than a silently ignored setting. `get` never type-checks a default, so a
parser may pass the model's own default (a float, an enum member) where the file
would hold a string.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from enum import StrEnum
from typing import Any, Iterator, NoReturn, TypeVar

from bootsrv.config.errors import ConfigError
from bootsrv.config.model import Portal

Choice = TypeVar("Choice", bound=StrEnum)

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Section:
    """A TOML table being read: tracks the key path for errors and unknown keys."""

    def __init__(self, file: Path, where: str, table: Any) -> None:
        self.file, self.where = file, where
        if not isinstance(table, dict):
            self.fail("", "a table")
        self.table: dict[str, Any] = table
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, expected: str, got: Any = None) -> NoReturn:
        shown = f", got {got!r}" if got is not None else ""
        raise ConfigError(f"{self.file}: {self.key(name) if name else self.where}: expected {expected}{shown}")

    def get(self, name: str, kind: type | tuple[type, ...], expected: str, default: Any = None,
            required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.table:
            if required:
                self.fail(name, f"{expected} (the key is required)")
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are Python ints: a `true` where a number belongs is a mistake.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(name, expected, value)
        return value

    def choice(self, name: str, choices: type[Choice], expected: str, default: Choice) -> Choice:
        """A string that must be one of `choices`' values, returned as that member."""
        value = self.get(name, str, expected, default)
        try:
            return choices(value)
        except ValueError:
            self.fail(name, expected, value)

    def sub(self, name: str, expected: str, where: str | None = None) -> Section:
        """The sub-table `name` (empty when absent), read as its own section."""
        return Section(self.file, where or self.key(name), self.get(name, dict, expected, {}))

    def entries(self, name: str, expected: str) -> Iterator[Section]:
        """The tables of the array `name` ([[disk]], ...), each a section keyed `name[index]`."""
        for index, table in enumerate(self.get(name, list, expected, [])):
            yield Section(self.file, f"{self.key(name)}[{index}]", table)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            self.fail(unknown[0], f"one of {', '.join(sorted(self.seen))} (unknown key {unknown[0]!r})")


def parse_size(text: Any) -> int | None:
    if isinstance(text, int) and not isinstance(text, bool):
        return text if text > 0 else None
    if not isinstance(text, str):
        return None
    match = _SIZE_RE.match(text)
    if not match:
        return None
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _SIZE_UNITS[unit]


def parse_duration(text: Any) -> float | None:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if text >= 0 else None
    if not isinstance(text, str):
        return None
    match = _DURATION_RE.match(text)
    if not match:
        return None
    return float(int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def ipv4(section: Section, key: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError):
        section.fail(key, "an IPv4 address like 10.77.0.1", value)


def portal(section: Section, text: Any, key: str = "portals") -> Portal:
    expected = 'a "host:port" string such as "0.0.0.0:3260" or "[::1]:3260"'
    if not isinstance(text, str):
        section.fail(key, expected, text)
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        section.fail(key, expected, text)
    return Portal(host, int(port))
