"""`log.tail`: the server's last log lines from its in-memory ring (bootsrv.logring)."""

from __future__ import annotations

from typing import Any

from bootsrv import logring
from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView

MAX_LIMIT = 2000


@operation("log.tail", on_loop=True)
def log_tail(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    limit, after = args.get("limit", 200), args.get("after")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
        raise ValueError(f"limit: expected a number of lines from 1 to {MAX_LIMIT}, got {limit!r}")
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise ValueError(f"after: expected the seq of a line, got {after!r}")
    ring = logring.ring()
    # "last": the newest line's seq, so a reader that has more (the server restarted) starts over
    return {"lines": ring.tail(limit, after) if ring is not None else [], "last": ring.seq if ring is not None else 0}
