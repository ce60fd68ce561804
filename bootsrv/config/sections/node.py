"""[node]: this bootsrv's name among the nodes that serve one Ceph cluster."""

from __future__ import annotations

from bootsrv.config.model import NodeConfig, default_of
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section


def parse(top: Section) -> NodeConfig:
    section = top.sub("node", "a [node] table")
    name = section.get("name", str, "a node name", default_of(NodeConfig, "name"))
    if name and not NAME_RE.match(name):
        section.fail("name", "letters, digits, '.', '_' or '-' (at most 64)", name)
    section.done()
    return NodeConfig(name)
