"""The progress model (done, total, rate over the last seconds, time left) and its renderers."""

from __future__ import annotations

import io
import json
import threading

import pytest

from bootsrv.progress import JsonLines, Progress, Silent, TerminalLine, renderer, run_shown


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_is_over_the_last_seconds_and_eta_follows_it():
    clock = Clock()
    progress = Progress(total=1000, clock=clock)
    assert progress.snapshot() == {"done": 0, "total": 1000, "unit": "bytes", "rate": None, "eta": None}
    for _ in range(10):  # 10 units a second for 10 seconds
        clock.now += 1
        progress.advance(10)
    state = progress.snapshot()
    assert state["done"] == 100 and state["rate"] == pytest.approx(10) and state["eta"] == pytest.approx(90)
    for _ in range(10):  # then 50 a second: the window forgets the slow start
        clock.now += 1
        progress.advance(50)
    state = progress.snapshot()
    assert state["rate"] == pytest.approx(50) and state["eta"] == pytest.approx(400 / 50)


def test_advance_from_many_threads_loses_nothing():
    progress = Progress(total=8 * 10000)
    workers = [threading.Thread(target=lambda: [progress.advance(1) for _ in range(10000)]) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert progress.snapshot()["done"] == 80000


def test_json_lines_are_rate_limited_and_end_with_the_outcome():
    clock, out = Clock(), io.StringIO()
    shown = JsonLines("disk.convert", "convert a -> b", out, every=0.5, clock=clock)
    for step in range(10):  # ten updates in 1.125 s: three lines
        shown.update({"done": step, "total": 10, "unit": "bytes", "rate": 1.0, "eta": 1.0})
        clock.now += 0.125
    shown.close({"state": "done", "done": 10, "total": 10, "result": "converted a -> b"})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["state"], line["done"]) for line in lines] == [("running", 0), ("running", 4), ("running", 8),
                                                               ("done", 10)]
    assert lines[-1] == {"kind": "disk.convert", "title": "convert a -> b", "state": "done", "done": 10,
                         "total": 10, "result": "converted a -> b"}


def test_the_terminal_line_shows_percent_rate_and_time_left():
    out = io.StringIO()
    shown = TerminalLine("convert a -> b", "bytes", out)
    shown.update({"done": 512 << 20, "total": 1 << 30})
    shown.close({"done": 1 << 30, "total": 1 << 30})
    text = out.getvalue()
    assert text.startswith("convert a -> b\n") and "100%|" in text
    assert "1.00G/1.00G" in text and "B/s, 00:00 left]" in text


def test_no_terminal_and_no_json_shows_nothing_and_failures_close_the_line(capsys):
    assert isinstance(renderer("disk.convert", "t", "bytes", as_json=False), Silent)  # pytest's stderr: no tty

    def broken(progress: Progress) -> None:
        progress.set_total(10)
        progress.advance(4)
        raise OSError("disk full")

    with pytest.raises(OSError):
        run_shown(broken, renderer("disk.convert", "t", "bytes", as_json=True))
    final = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert final["state"] == "failed" and final["error"] == "disk full" and final["done"] == 4
