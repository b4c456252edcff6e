"""WindowAverage and MaxWindow: Knative's bucket semantics on an injected timeline."""

from __future__ import annotations

import pytest

from autoscaler.buckets import MaxWindow, WindowAverage

T0 = 1_700_000_000.0


def test_empty_window_reads_zero_and_is_empty() -> None:
    window = WindowAverage(60)
    assert window.is_empty(T0)
    assert window.average(T0) == 0.0


def test_values_in_one_second_add_up() -> None:
    window = WindowAverage(60)
    window.record(T0 + 0.1, 3)
    window.record(T0 + 0.9, 2)
    assert window.average(T0 + 0.9) == 5.0


def test_partial_window_averages_over_the_seconds_written() -> None:
    window = WindowAverage(60)
    for second in range(6):
        window.record(T0 + second, 10)
    assert window.average(T0 + 5) == 10.0


def test_gaps_inside_the_window_count_as_zero() -> None:
    window = WindowAverage(10)
    window.record(T0, 10)
    window.record(T0 + 4, 10)  # seconds 1..3 carry nothing
    assert window.average(T0 + 4) == pytest.approx(20 / 5)


def test_silence_after_the_last_write_shrinks_the_window() -> None:
    window = WindowAverage(10)
    for second in range(10):
        window.record(T0 + second, 1)
    # three silent seconds: the three oldest buckets fall out, seven ones remain over 7 slots
    assert window.average(T0 + 12) == pytest.approx(1.0)
    assert not window.is_empty(T0 + 12)


def test_a_window_without_writes_reads_zero() -> None:
    window = WindowAverage(10)
    window.record(T0, 5)
    assert window.average(T0 + 10) == 0.0
    assert window.is_empty(T0 + 11)


def test_writes_after_a_long_silence_start_a_fresh_window() -> None:
    window = WindowAverage(10)
    window.record(T0, 100)
    window.record(T0 + 30, 4)
    assert window.average(T0 + 30) == 4.0


def test_old_values_are_ignored() -> None:
    window = WindowAverage(10)
    window.record(T0 + 20, 1)
    window.record(T0, 100)
    assert window.average(T0 + 20) == 1.0


def test_the_window_slides() -> None:
    window = WindowAverage(3)
    for second, value in enumerate([9, 0, 0, 3]):
        window.record(T0 + second, value)
    assert window.average(T0 + 3) == pytest.approx(1.0)  # 0, 0, 3


def test_resize_keeps_the_newest_buckets() -> None:
    window = WindowAverage(6)
    for second, value in enumerate([6, 6, 6, 1, 1, 1]):
        window.record(T0 + second, value)
    window.resize(3, T0 + 5)
    assert window.window == 3
    assert window.average(T0 + 5) == pytest.approx(1.0)


def test_max_window_holds_the_largest_value_over_the_duration() -> None:
    delay = MaxWindow(10, 2)
    delay.record(T0, 5)
    delay.record(T0 + 2, 1)
    assert delay.current() == 5
    delay.record(T0 + 8, 1)
    assert delay.current() == 5
    delay.record(T0 + 10, 1)  # the 5 recorded at T0 is now a whole duration old
    assert delay.current() == 1
    delay.record(T0 + 12, 3)
    assert delay.current() == 3
