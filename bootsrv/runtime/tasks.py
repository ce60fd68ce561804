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

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from bootsrv.progress import Progress

KEEP = 100  # finished tasks remembered
RUNNING = 32  # tasks running (or waiting for a worker thread) at once: more are refused
WORKERS = 4  # tasks that work at once; the rest wait their turn (each is hours of disk I/O at most)
LOG_LINES = 200  # log records kept per task
MAX_MESSAGE = 1000  # characters of one log record kept in a task's log
SHORT = 200  # characters of a result shown in a list row or a log line
STOPPED = "stopped with the server"


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
            self.log.append({"time": time.time(), "level": level, "message": message[:MAX_MESSAGE]})

    def finish(self, result: Any) -> None:
        self.result, self.ended, self.state = result, time.time(), TaskState.DONE
        self.note("INFO", f"done: {_short(result)}" if result not in (None, "") else "done")

    def fail(self, error: str) -> None:
        self.error, self.ended, self.state = error, time.time(), TaskState.FAILED
        self.note("ERROR", f"failed: {error}")

    def as_dict(self, whole_result: bool = True) -> dict[str, Any]:
        """The task as CONTRACTS.md has it; a list row carries its result cut short (`task.show` whole)."""
        state = self.progress.snapshot()
        if self.state != TaskState.RUNNING:
            state["rate"] = state["eta"] = None
        result = self.result if whole_result or len(str(self.result)) <= SHORT else _short(self.result)
        return {"id": self.id, "kind": self.kind, "title": self.title, "state": self.state,
                "done": state["done"], "total": state["total"], "unit": state["unit"], "rate": state["rate"],
                "eta": state["eta"], "started": self.started, "ended": self.ended, "error": self.error,
                "result": result}

    def with_log(self) -> dict[str, Any]:
        with self._lock:
            lines = list(self.log)
        return {**self.as_dict(), "log": lines}


def _short(value: Any, limit: int = SHORT) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class TaskLimit(Exception):
    """Too many tasks are running already; the message says how many."""


class TaskRegistry:
    def __init__(self, keep: int = KEEP, running: int = RUNNING) -> None:
        self._keep = keep
        self._running = running
        self._tasks: dict[str, Task] = {}  # insertion order: oldest first
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}"  # ids stay unique across restarts of the server
        # Tasks work on threads of their own: long exports must never take the event loop's
        # default pool, which the boot path (a client's disk opened at PXE time) and every
        # other operation need at once.
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="task")

    def run(self, task: Task, work: Callable[[], Any]) -> "asyncio.Future[Any]":
        """`work()` on a task thread, awaitable from the loop."""
        return asyncio.get_running_loop().run_in_executor(self._executor, work)

    def stop(self) -> None:
        """The server stops: running tasks are told to stop at their next step (a partial file is
        removed, as when they fail), and tasks still waiting for a thread fail without starting."""
        with self._lock:
            running = [task for task in self._tasks.values() if task.state == TaskState.RUNNING]
        for task in running:
            task.progress.cancel(STOPPED)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def ended(self, timeout: float) -> None:
        """Until no task runs (they stop at their next step), or `timeout` seconds: what the
        server closes after this (stores, the snapshot engine) is what tasks work on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not any(task.state == TaskState.RUNNING for task in self._tasks.values()):
                    return
            await asyncio.sleep(0.1)

    def start(self, kind: str, title: str, unit: str = "bytes") -> Task:
        task = Task(f"{self._prefix}-{next(self._ids)}", kind, title, Progress(unit=unit))
        task.note("INFO", f"started: {title}")
        with self._lock:
            if sum(t.state == TaskState.RUNNING for t in self._tasks.values()) >= self._running:
                raise TaskLimit(f"{self._running} tasks are running already: wait for one to end (bootsrv task list)")
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
        return [task.as_dict(whole_result=False) for task in reversed(tasks)]

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
