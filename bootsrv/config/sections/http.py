"""[http]: the port of bootsrv's HTTP for boot files (installer ISOs for iPXE's sanboot, UEFI HTTP boot)."""

from __future__ import annotations

from bootsrv.config.model import HttpConfig
from bootsrv.config.reader import Section

DEFAULTS = HttpConfig()


def parse(top: Section) -> HttpConfig:
    section = top.sub("http", "an [http] table")
    http = HttpConfig(section.get("port", int, "a TCP port", DEFAULTS.port))
    if not 0 < http.port < 65536:
        section.fail("port", "a TCP port from 1 to 65535", http.port)
    section.done()
    return http
