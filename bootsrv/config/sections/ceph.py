"""[ceph]: the cluster `rbd:POOL/IMAGE` disks live in (ceph.conf, client id, keyring)."""

from __future__ import annotations

from pathlib import Path

from bootsrv.config.model import CephConfig
from bootsrv.config.reader import Section

DEFAULTS = CephConfig()


def parse(top: Section, base: Path) -> CephConfig:
    section = top.sub("ceph", "a [ceph] table")
    conf = section.get("conf", str, "a ceph.conf path", str(DEFAULTS.conf))
    client = section.get("id", str, 'a client id such as "admin" (without "client.")', DEFAULTS.id)
    if not client or client.startswith("client.") or any(c.isspace() for c in client):
        section.fail("id", 'a client id such as "admin" (without "client.")', client)
    keyring = section.get("keyring", str, "a keyring path", "")
    section.done()
    return CephConfig((base / conf).resolve(), client, (base / keyring).resolve() if keyring else None)
