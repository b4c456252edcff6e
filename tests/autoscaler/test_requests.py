"""A revision's per-second request metrics, fed stats at explicit times."""

from __future__ import annotations

import pytest

from autoscaler.collector import extrapolate
from autoscaler.requests import RETENTION_SECONDS, RequestWindow
from knserve.stats_wire import LATENCY_BUCKETS_MS, LATENCY_COUNTS_LENGTH, Stat

START = 10_000.0  # a whole second


def latency(**by_bound: float) -> tuple[float, ...]:
    """Latency counts keyed by bucket bound: latency(b100=2) is two responses in (80, 100] ms."""
    counts = [0.0] * LATENCY_COUNTS_LENGTH
    for key, count in by_bound.items():
        counts[LATENCY_BUCKETS_MS.index(float(key[1:]))] = count
    return tuple(counts)


def stat(ok: float = 0.0, errors: float = 0.0, *, counts: tuple[float, ...] = (), concurrency: float = 0.0) -> Stat:
    responses = {name: count for name, count in (("2xx", ok), ("5xx", errors)) if count}
    return Stat("p", average_concurrent_requests=concurrency, responses=responses, latency_counts=counts)


# (arrival offset from START, stat) rows; a stat lands in the second before its arrival
STEADY = [(1.05 + i, stat(9, 1, counts=latency(b10=9, b500=1), concurrency=2.0)) for i in range(10)]


@pytest.mark.parametrize(
    ("recorded", "since", "until", "want"),
    [
        pytest.param([], 0, 10, {"requests": 0, "covered": 0, "error_rate": None, "p99": None}, id="nothing"),
        pytest.param(STEADY, 0, 10, {"requests": 100, "covered": 10, "error_rate": 0.1, "p99": 495.0}, id="all-ten"),
        pytest.param(STEADY, 0, 5, {"requests": 50, "covered": 5, "error_rate": 0.1, "p99": 495.0}, id="first-five"),
        pytest.param(STEADY, 9, 20, {"requests": 10, "covered": 1, "error_rate": 0.1, "p99": 495.0}, id="last-one"),
        pytest.param(STEADY, 10, 20, {"requests": 0, "covered": 0, "error_rate": None, "p99": None}, id="after"),
        pytest.param(
            [(1.1, stat(5, counts=latency(b5=5))), (1.9, stat(5, counts=latency(b5=5)))],
            0, 1, {"requests": 10, "covered": 1, "error_rate": 0.0, "p99": 4.95},
            id="two-reporters-add-up-in-one-second",
        ),
        pytest.param(
            [(1.1, stat(4)), (3.1, stat(0, concurrency=1.0))],
            0, 5, {"requests": 4, "covered": 2, "error_rate": 0.0, "p99": None},
            id="an-older-reporter-without-a-histogram-has-counts-but-no-quantiles",
        ),
    ],
)
def test_summary_over_a_range(
    recorded: list[tuple[float, Stat]], since: float, until: float, want: dict[str, object]
) -> None:
    window = RequestWindow(namespace="default", revision="hello-00002")
    for offset, one in recorded:
        window.record(START + offset, one)
    summary = window.summary(since=START + since, until=START + until, now=START + 20)
    assert (summary.namespace, summary.revision, summary.since, summary.until) == (
        "default", "hello-00002", START + since, START + until,
    )
    got = {"requests": summary.requests, "covered": summary.covered_seconds, "error_rate": summary.error_rate,
           "p99": summary.p99_ms}
    assert got == pytest.approx(want)


def test_fifteen_minutes_are_kept_and_older_seconds_forgotten() -> None:
    window = RequestWindow(namespace="default", revision="r")
    for second in range(RETENTION_SECONDS + 100):
        window.record(START + second + 0.05, stat(1, counts=latency(b5=1)))
    now = START + RETENTION_SECONDS + 99.5  # just after the last stat came
    assert len(window) == RETENTION_SECONDS
    summary = window.summary(since=START, until=now, now=now)
    assert summary.requests == RETENTION_SECONDS
    assert summary.covered_seconds == RETENTION_SECONDS
    # asking for a range that is gone reads as no data, not as old data
    assert window.summary(since=START, until=START + 50, now=now).requests == 0


def test_a_late_stat_for_an_older_second_still_counts() -> None:
    window = RequestWindow(namespace="default", revision="r")
    window.record(START + 5.05, stat(1))
    window.record(START + 3.5, stat(2))  # arrived late: the second before its arrival, 2
    assert window.summary(since=START + 2, until=START + 3, now=START + 6).requests == 2
    assert window.summary(since=START, until=START + 6, now=START + 6).requests == 3


def test_series_has_one_sample_per_second_with_gaps_as_zeros() -> None:
    window = RequestWindow(namespace="default", revision="r")
    window.record(START + 1.05, stat(9, 1, counts=latency(b10=9, b500=1), concurrency=2.0))
    window.record(START + 3.05, stat(0, concurrency=0.5))
    samples = window.series(since=START, until=START + 3, now=START + 4)
    assert [sample.t for sample in samples] == [START, START + 1, START + 2]
    first, second, third = samples
    assert (first.requests, first.errors, first.concurrency) == (10, 1, 2.0)
    assert first.p50_ms == pytest.approx(5.0 + 5.0 * 5 / 9)
    assert first.p99_ms == pytest.approx(495.0)
    assert (second.requests, second.p50_ms, second.concurrency) == (0, None, 0.0)
    assert (third.requests, third.p99_ms, third.concurrency) == (0, None, 0.5)


def test_the_concurrency_given_replaces_the_stats_own() -> None:
    window = RequestWindow(namespace="default", revision="r")
    window.record(START + 1.05, stat(1, concurrency=5.0), concurrency=3.0)
    assert window.series(since=START, until=START + 1, now=START + 2)[0].concurrency == 3.0


def test_extrapolated_scrapes_scale_responses_and_latencies_like_the_counts() -> None:
    sampled = [stat(8, 2, counts=latency(b10=8, b500=2)), stat(10, counts=latency(b10=10))]
    total = extrapolate(sampled, sample_size=2, population=5)
    assert total.responses == {"2xx": 45.0, "5xx": 5.0}
    assert sum(total.latency_counts) == 50.0
    assert total.latency_counts[LATENCY_BUCKETS_MS.index(500.0)] == 5.0
    old = extrapolate([Stat("p", 1.0)], sample_size=1, population=2)
    assert old.responses == {} and old.latency_counts == ()
