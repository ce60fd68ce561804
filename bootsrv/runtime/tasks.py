"""Tasks: the long operations the server runs (a convert, an export, a verify), each with its
state, its progress and its log, as Proxmox Backup Server keeps its task list.

The appliance owns one `TaskRegistry`; the operations table (bootsrv.ops.registry) makes a
task of every operation registered with `task=...`, and `task.list` / `task.show` read it.
Everything is bounded: the registry keeps the newest `keep` finished tasks (running ones are
never dropped: the worker threads bound them), and each task's log its last `log_lines`.

What a task logs: every record logged on the worker thread while it runs (the operation's own
messages and the libraries' under it), through one handler on the root logger, plus its start
and end. Thread-safe: workers write, the event loop reads.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bootsrv.progress import Progress

KEEP = 100  # finished tasks remembered
LOG_LINES = 200  # log records kept per task


class TaskState:
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Task:
    id: str
    kind: str
    title: str
    progress: Progress
    started: float = field(default_factory=time.time)
    state: str = TaskState.RUNNING
    ended: float | None = None
    error: str | None = None
    result: Any = None
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, level: str, message: str) -> None:
        with self._lock:
            self.log.append({"time": time.time(), "level": level, "message": message})

    def finish(self, result: Any) -> None:
        self.result, self.ended, self.state = result, time.time(), TaskState.DONE
        self.note("INFO", f"done: {_short(result)}" if result not in (None, "") else "done")

    def fail(self, error: str) -> None:
        self.error, self.ended, self.state = error, time.time(), TaskState.FAILED
        self.note("ERROR", f"failed: {error}")

    def as_dict(self) -> dict[str, Any]:
        state = self.progress.snapshot()
        if self.state != TaskState.RUNNING:
            state["rate"] = state["eta"] = None
        return {"id": self.id, "kind": self.kind, "title": self.title, "state": self.state,
                "done": state["done"], "total": state["total"], "unit": state["unit"], "rate": state["rate"],
                "eta": state["eta"], "started": self.started, "ended": self.ended, "error": self.error,
                "result": self.result}

    def with_log(self) -> dict[str, Any]:
        with self._lock:
            lines = list(self.log)
        return {**self.as_dict(), "log": lines}


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class TaskRegistry:
    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._tasks: dict[str, Task] = {}  # insertion order: oldest first
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}"  # ids stay unique across restarts of the server

    def start(self, kind: str, title: str, unit: str = "bytes") -> Task:
        task = Task(f"{self._prefix}-{next(self._ids)}", kind, title, Progress(unit=unit))
        task.note("INFO", f"started: {title}")
        with self._lock:
            self._tasks[task.id] = task
            self._prune()
        return task

    def _prune(self) -> None:
        finished = [t.id for t in self._tasks.values() if t.state != TaskState.RUNNING]
        for old in finished[:max(0, len(finished) - self._keep)]:
            del self._tasks[old]

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            self._prune()
            tasks = list(self._tasks.values())
        return [task.as_dict() for task in reversed(tasks)]

    def get(self, task_id: str) -> Task:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise KeyError(f"no task {task_id!r} (finished tasks are kept: the newest {self._keep})")
        return task


# ---- the log of the task that runs on this thread ------------------------------------------

_current = threading.local()


def current() -> Task | None:
    return getattr(_current, "task", None)


class running_on_this_thread:
    """`with running_on_this_thread(task):` the records this thread logs go to the task's log."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def __enter__(self) -> Task:
        _install_handler()
        _current.task = self.task
        return self.task

    def __exit__(self, *exc: object) -> None:
        _current.task = None


class _TaskLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        task = current()
        if task is not None:
            try:
                task.note(record.levelname, record.getMessage())
            except Exception:  # a bad format string must not fail the operation
                self.handleError(record)


_handler_lock = threading.Lock()
_handler: _TaskLogHandler | None = None


def _install_handler() -> None:
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = _TaskLogHandler(logging.INFO)
            logging.getLogger().addHandler(_handler)
