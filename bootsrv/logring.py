"""The last log lines in memory, for the dashboard's log view and `log.tail`: a handler on
the root logger that keeps a bounded ring of records (newest last), each numbered so a
reader can ask only for what came after the last line it has."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

CAPACITY = 2000  # lines kept; older ones drop off
MAX_MESSAGE = 4000  # characters of one line kept (a traceback is cut, never the ring's bound)


class LogRing(logging.Handler):
    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[dict[str, Any]] = deque(maxlen=capacity)
        self.seq = 0
        self._guard = threading.Lock()  # records come from the loop and from worker threads

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        except Exception:  # a bad format string must not break logging elsewhere
            message = str(record.msg)
        with self._guard:
            self.seq += 1
            self.lines.append({"seq": self.seq, "time": record.created, "level": record.levelname,
                               "logger": record.name, "message": message[:MAX_MESSAGE]})

    def tail(self, limit: int = 200, after: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` lines (oldest first), only those numbered above `after` if given."""
        with self._guard:
            lines = [line for line in self.lines if after is None or line["seq"] > after]
        return lines[-limit:] if limit > 0 else []


_ring: LogRing | None = None


def install(capacity: int = CAPACITY) -> LogRing:
    """The process's one ring, on the root logger (a second call returns the first)."""
    global _ring
    if _ring is None:
        _ring = LogRing(capacity)
        logging.getLogger().addHandler(_ring)
    return _ring


def ring() -> LogRing | None:
    return _ring
