"""Which names the configuration accepts (the client IQN rule itself is in bootsrv.naming).

Names are checked in lower case (iSCSI names are case-insensitive, RFC 3722), and the
parsers store them lower-cased, so comparisons elsewhere are plain string equality.
"""

from __future__ import annotations

import re

# The client IQN rule is written once, with the other naming rules (it imports nothing).
from bootsrv.naming import client_target_iqn  # noqa: F401 (re-exported)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # disks, images, schedules
HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # clients: they become DNS host names
MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
_IQN_RE = re.compile(r"^iqn\.\d{4}-\d{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:-]+)?$")
_EUI_RE = re.compile(r"^eui\.[0-9a-f]{16}$")
_NAA_RE = re.compile(r"^naa\.([0-9a-f]{16}|[0-9a-f]{32})$")


def valid_iscsi_name(name: str) -> bool:
    name = name.lower()
    return len(name) <= 223 and bool(_IQN_RE.match(name) or _EUI_RE.match(name) or _NAA_RE.match(name))
