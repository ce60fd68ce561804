"""`history`: the dashboard's charts, the last hour of samples kept by the web server
(bootsrv.web.history), as columns; `since` (a sample time) gives only newer ones."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView


@operation("history")  # a worker thread: an hour of many clients is a lot of numbers to lay out
def history(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    since = args.get("since")
    if since is not None and (not isinstance(since, (int, float)) or isinstance(since, bool)):
        raise ValueError(f"since: expected the time of a sample (seconds since the epoch), got {since!r}")
    kept = view.history()
    if kept is None:
        raise ValueError("no history: it is kept while the dashboard is on ([web] listen)")
    return kept.columns(since)
