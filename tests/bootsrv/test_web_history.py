"""The dashboard's history ring (rates from two readings of the counters, the bound, `since`)
and the log ring behind `log.tail`."""

from __future__ import annotations

import logging

from bootsrv.logring import LogRing
from bootsrv.web.history import History, Reading, Space


def test_rates_come_from_the_difference_of_two_readings():
    history = History(interval=2.0)
    before = Reading(100.0, (0, 0, 0, 0.0), {"pc1": (0, 0, 0, 0.0)}, 1, 10, 3)
    after = Reading(102.0, (4096, 8192, 4, 0.004), {"pc1": (4096, 0, 2, 0.001), "pc2": (0, 8192, 2, 0.003)}, 2, 14, 3)
    history.add(before, after, Space({"pc1": 1000, "pc2": 2000}, 500, 1 << 30))
    columns = history.columns()
    total = {key: values[0] for key, values in columns["total"].items()}
    assert total == {"read": 2048.0, "write": 4096.0, "iops": 2.0, "latency": 1.0, "sessions": 2, "dhcp": 2.0,
                     "tftp": 0.0, "disk_used": 3000, "snapshot_bytes": 500, "free": 1 << 30}
    assert columns["clients"]["pc1"] == {"read": [2048.0], "write": [0.0], "iops": [1.0], "latency": [0.5],
                                         "disk_used": [1000]}
    assert columns["clients"]["pc2"]["iops"] == [0.0]  # new since the last reading: no rate yet
    idle = Reading(104.0, after.total, after.clients, 2, None, 3)
    history.add(after, idle, Space({}, 0, None))
    assert history.columns()["total"]["latency"][1] is None and history.columns()["total"]["dhcp"][1] is None
    first = columns["t"][0]
    assert history.columns(since=first)["t"] == [t for t in history.columns()["t"] if t > first]


def test_the_ring_keeps_an_hour_and_no_more():
    history = History(interval=600.0)  # six samples an hour
    reading = Reading(0.0, (0, 0, 0, 0.0), {}, 0, None, None)
    for _ in range(10):
        history.add(reading, reading, Space({}, 0, None))
    assert len(history.columns()["t"]) == 6 and history.columns()["span"] == 3600


def test_log_ring_is_bounded_and_numbered():
    ring = LogRing(capacity=3)
    logger = logging.getLogger("test.logring")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        for n in range(5):
            logger.info("line %d", n)
        logger.debug("not kept")
    finally:
        logger.removeHandler(ring)
    lines = ring.tail(10)
    assert [line["message"] for line in lines] == ["line 2", "line 3", "line 4"]
    assert [line["seq"] for line in ring.tail(10, after=lines[1]["seq"])] == [5]
    assert [line["message"] for line in ring.tail(1)] == ["line 4"]
