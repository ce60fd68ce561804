"""[server]: where state lives and how much to log."""

from __future__ import annotations

from pathlib import Path

from bootsrv.config.model import ServerConfig, default_of
from bootsrv.config.reader import Section

_LEVELS = ("debug", "info", "warning", "error")
_EXPECTED = 'one of "debug", "info", "warning", "error"'


def parse(top: Section, base: Path) -> ServerConfig:
    section = top.sub("server", "a [server] table")
    state_dir = section.get("state_dir", str, "a folder path", "state")
    log_level = section.get("log_level", str, _EXPECTED, default_of(ServerConfig, "log_level"))
    if log_level not in _LEVELS:
        section.fail("log_level", _EXPECTED, log_level)
    section.done()
    return ServerConfig((base / state_dir).resolve(), log_level)
