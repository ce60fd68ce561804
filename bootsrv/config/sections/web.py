"""[web]: the dashboard and API listener, off unless `listen` is set, and its token."""

from __future__ import annotations

from bootsrv.config.model import WebConfig, default_of
from bootsrv.config.reader import Section, portal


def parse(top: Section) -> WebConfig:
    section = top.sub("web", "a [web] table")
    listen = section.get("listen", str, 'a "host:port" like "127.0.0.1:8080"', None)
    token = section.get("token", str, "a token of at least 16 characters", "")
    interval = section.get("history_interval", (int, float), "seconds from 0.1 to 600",
                           default_of(WebConfig, "history_interval"))
    if not 0.1 <= interval <= 600:
        section.fail("history_interval", "seconds from 0.1 to 600", interval)
    section.done()
    if listen is None:
        return WebConfig()
    where = portal(section, listen, "listen")
    if len(token) < 16:
        section.fail("token", "a token of at least 16 characters (the dashboard can take snapshots and roll "
                     "disks back)", f"{len(token)} characters")
    return WebConfig(where, token, float(interval))
