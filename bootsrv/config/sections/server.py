"""[server]: where state lives and how much to log."""

from __future__ import annotations

from pathlib import Path

from bootsrv.config.model import DEFAULT_STATE_DIR, ServerConfig, default_of
from bootsrv.config.modes import LogLevel, listed
from bootsrv.config.reader import Section

_EXPECTED = f"one of {listed(LogLevel)}"


def parse(top: Section, base: Path) -> ServerConfig:
    section = top.sub("server", "a [server] table")
    state_dir = section.get("state_dir", str, "a folder path", DEFAULT_STATE_DIR)
    log_level = section.choice("log_level", LogLevel, _EXPECTED, default_of(ServerConfig, "log_level"))
    section.done()
    return ServerConfig((base / state_dir).resolve(), log_level)
