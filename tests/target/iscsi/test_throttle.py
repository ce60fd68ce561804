"""Failed-login throttling per source address, on an injected clock."""

from target.iscsi.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_blocked_after_the_limit_and_only_that_address():
    clock = Clock()
    throttle = LoginThrottle(limit=3, window=60, penalty=30, clock=clock)
    assert not throttle.failed("10.0.0.5") and not throttle.failed("10.0.0.5")
    assert throttle.blocked_for("10.0.0.5") == 0
    assert throttle.failed("10.0.0.5")
    assert throttle.blocked_for("10.0.0.5") == 30
    assert throttle.blocked_for("10.0.0.6") == 0  # a neighbour is not punished
    clock.now += 29.5
    assert throttle.blocked_for("10.0.0.5") == 0.5
    clock.now += 1
    assert throttle.blocked_for("10.0.0.5") == 0


def test_failures_spread_beyond_the_window_and_a_success_forgive():
    clock = Clock()
    throttle = LoginThrottle(limit=3, window=60, penalty=30, clock=clock)
    for _ in range(10):  # one failure a minute never reaches the limit
        assert not throttle.failed("10.0.0.7")
        clock.now += 61
    throttle.failed("10.0.0.8")
    throttle.failed("10.0.0.8")
    throttle.succeeded("10.0.0.8")
    assert not throttle.failed("10.0.0.8")


def test_memory_is_bounded_under_a_flood_of_addresses():
    throttle = LoginThrottle(limit=2, tracked=100, clock=Clock())
    for n in range(10000):
        throttle.failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    assert len(throttle._failures) <= 100
