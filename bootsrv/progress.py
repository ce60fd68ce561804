"""Progress of long work (a convert, an export, a verify): how much is done, of how much,
how fast, and how long is left.

A `Progress` is what the work calls, once per chunk, from any thread: `advance(n)` takes a
lock and adds, nothing more, so calling it per MiB costs nothing next to the I/O. Whoever
shows it reads `snapshot()` when it wants to: a task on the server (bootsrv.runtime.tasks),
or a `Renderer` in the CLI (a terminal line, JSON lines, or nothing), fed by `follow()`.

The rate is measured over the last few seconds, not since the start, so a copy that slows
down (a disk's busy part, a pause for a snapshot) shows it and its time left follows.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol, TextIO

RATE_WINDOW = 5.0  # seconds of samples the rate is taken over
SAMPLE_EVERY = 0.2  # seconds between the samples kept for it (bounded: window / every)

# What long work is given to report through: called with the bytes (or items) just done.
Advance = Callable[[int], None]


class Cancelled(Exception):
    """The work was told to stop (the server is stopping): raised from its next progress call."""


class Progress:
    """Done out of total (None: not known yet) in `unit`s, thread-safe. `cancel(reason)` makes
    the work's next `advance` or `set_total` raise `Cancelled`: every long loop reports per
    chunk, so that is where it can stop between two whole steps."""

    def __init__(self, total: int | None = None, unit: str = "bytes", clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.unit = unit
        self.total = total
        self.done = 0
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)], maxlen=int(RATE_WINDOW / SAMPLE_EVERY) + 1)
        self._cancelled: str | None = None

    def advance(self, count: int) -> None:
        with self._lock:
            self._check()
            self.done += count
            self._sample()

    def set_total(self, total: int | None) -> None:
        with self._lock:
            self._check()
            self.total = total

    def cancel(self, reason: str) -> None:
        with self._lock:
            self._cancelled = reason

    def _check(self) -> None:
        if self._cancelled is not None:
            raise Cancelled(self._cancelled)

    def _sample(self) -> None:
        now = self._clock()
        if now - self._samples[-1][0] >= SAMPLE_EVERY:
            self._samples.append((now, self.done))

    def snapshot(self) -> dict[str, Any]:
        """{"done", "total", "unit", "rate" (units/s or None), "eta" (seconds or None)}."""
        with self._lock:
            now, done, total = self._clock(), self.done, self.total
            first_time, first_done = self._samples[0]
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
                self._samples.popleft()
                first_time, first_done = self._samples[0]
        elapsed = now - first_time
        rate = (done - first_done) / elapsed if elapsed > 0.05 and done > first_done else None
        eta = max(0.0, (total - done) / rate) if rate and total is not None else None
        return {"done": done, "total": total, "unit": self.unit, "rate": rate, "eta": eta}


# ---- showing it (the CLI) ------------------------------------------------------------------


class Renderer(Protocol):
    def update(self, state: dict[str, Any]) -> None: ...
    def close(self, final: dict[str, Any]) -> None: ...


class Silent:
    """Output that is not a terminal and no --json: no progress at all (logs and pipes stay clean)."""

    def update(self, state: dict[str, Any]) -> None:
        pass

    def close(self, final: dict[str, Any]) -> None:
        pass


class TerminalLine:
    """The title, then one line redrawn in place: percent, bar, done/total, rate, time left
    (the title on its own line: paths are long, and the numbers must fit the width).
    tqdm draws it (it knows terminal widths, units and its own redraw rate limit)."""

    def __init__(self, title: str, unit: str, stream: TextIO) -> None:
        from tqdm import tqdm  # only the CLI on a terminal needs it

        byte_units = unit == "bytes"
        columns, rows = _screen(stream)
        stream.write(title + "\n")
        self._bar = tqdm(total=None, unit="B" if byte_units else " " + unit, unit_scale=byte_units,
                         unit_divisor=1024, file=stream, ncols=columns, nrows=rows, mininterval=0.2,
                         bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                    "[{rate_fmt}, {remaining} left]")

    def update(self, state: dict[str, Any]) -> None:
        if state["total"] is not None and self._bar.total != state["total"]:
            self._bar.total = state["total"]
        step = state["done"] - self._bar.n
        if step > 0:
            self._bar.update(step)

    def close(self, final: dict[str, Any]) -> None:
        self.update(final)
        self._bar.close()


def _screen(stream: TextIO) -> tuple[int, int]:
    """The terminal's columns and rows; 80x24 where it says 0 (a pseudo-terminal nobody sized,
    as `script` gives a command whose input is not a terminal: tqdm would draw nothing)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 80, 24
    return size.columns or 80, size.lines or 24


class JsonLines:
    """`--json`: one object per line on `stream`, at most one per `every` seconds, and always a
    last one (state "done" or "failed", with the result or the error)."""

    def __init__(self, kind: str, title: str, stream: TextIO, every: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._head = {"kind": kind, "title": title}
        self._stream = stream
        self._every = every
        self._clock = clock
        self._last: float | None = None

    def update(self, state: dict[str, Any]) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return
        self._last = now
        self._write({**self._head, "state": "running", **_progress_fields(state)})

    def close(self, final: dict[str, Any]) -> None:
        self._write({**self._head, **final})

    def _write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()


def _progress_fields(state: dict[str, Any]) -> dict[str, Any]:
    return {key: state.get(key) for key in ("done", "total", "unit", "rate", "eta")}


def renderer(kind: str, title: str, unit: str, as_json: bool) -> Renderer:
    """What this CLI run shows: JSON lines on stdout when asked, a terminal line on stderr when
    stderr is a terminal, else nothing."""
    if as_json:
        return JsonLines(kind, title, sys.stdout)
    if sys.stderr.isatty():
        return TerminalLine(title, unit, sys.stderr)
    return Silent()


def run_shown(work: Callable[[Progress], Any], shown: Renderer, unit: str = "bytes", every: float = 0.2) -> Any:
    """Run `work(progress)` here while a thread draws the progress every `every` seconds;
    close the renderer with the outcome (and re-raise a failure after it)."""
    progress = Progress(unit=unit)
    stop = threading.Event()

    def draw() -> None:
        while not stop.wait(every):
            shown.update(progress.snapshot())

    drawer = threading.Thread(target=draw, name="progress", daemon=True)
    drawer.start()
    try:
        result = work(progress)
    except BaseException as exc:
        stop.set()
        drawer.join()
        shown.close({"state": "failed", **_progress_fields(progress.snapshot()), "error": str(exc)})
        raise
    stop.set()
    drawer.join()
    shown.close({"state": "done", **_progress_fields(progress.snapshot()), "result": result})
    return result
