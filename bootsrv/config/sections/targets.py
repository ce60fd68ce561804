"""[[target]]: the targets initiators log in to, their LUNs, ACLs and CHAP."""

from __future__ import annotations

from typing import Collection

from bootsrv.config.model import TargetConfig, default_of
from bootsrv.config.names import valid_iscsi_name
from bootsrv.config.reader import Section
from bootsrv.config.sections import chap as chap_section


def initiator_names(section: Section, example: str) -> tuple[str, ...]:
    """The `initiators` list: iSCSI names, lower-cased (ACL checks compare lower case)."""
    initiators = section.get("initiators", list, "a list of initiator IQNs", [])
    for initiator in initiators:
        if not isinstance(initiator, str) or not valid_iscsi_name(initiator):
            section.fail("initiators", f'iSCSI names like "{example}"', initiator)
    return tuple(i.lower() for i in initiators)


def _target(section: Section, disks: Collection[str], taken: list[TargetConfig]) -> TargetConfig:
    iqn = section.get("iqn", str, "an iSCSI name", required=True).lower()
    if not valid_iscsi_name(iqn):
        section.fail("iqn", 'an iSCSI name like "iqn.2026-11.lan.bootsrv:disk1"', iqn)
    if any(t.iqn == iqn for t in taken):
        section.fail("iqn", "a name no other [[target]] uses", iqn)
    luns = section.get("luns", list, "a list of disk names", required=True)
    for lun in luns:
        if lun not in disks:
            section.fail("luns", f"names of [[disk]] entries ({', '.join(disks) or 'none defined'})", lun)
    if len(set(luns)) != len(luns):
        section.fail("luns", "each disk at most once")
    initiators = initiator_names(section, "iqn.1991-05.com.microsoft:ws01")
    alias = section.get("alias", str, "a short description", default_of(TargetConfig, "alias"))
    chap = chap_section.parse(section, "chap")
    mutual = chap_section.parse(section, "mutual_chap")
    if mutual is not None and chap is None:
        section.fail("mutual_chap", "chap to be set too (the initiator authenticates first)")
    if mutual is not None and chap is not None and mutual.secret == chap.secret:
        section.fail("mutual_chap", "a secret different from chap's (RFC 7143 12.1.3)")
    section.done()
    return TargetConfig(iqn, tuple(luns), initiators, alias, chap, mutual)


def parse(top: Section, disks: Collection[str]) -> tuple[TargetConfig, ...]:
    targets: list[TargetConfig] = []
    for section in top.entries("target", "[[target]] tables"):
        targets.append(_target(section, disks, targets))
    return tuple(targets)
