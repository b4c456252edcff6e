"""Annotation parsing and back-off arithmetic (pure)."""

from __future__ import annotations

import pytest

from knserve.callpolicy import (
    DEFAULT_RETRY_CODES,
    PolicyError,
    RetryPolicy,
    parse_duration,
    parse_policy,
    parse_retry_after,
)


@pytest.mark.parametrize(("text", "seconds"), [
    pytest.param("500ms", 0.5, id="milliseconds"),
    pytest.param("10s", 10.0, id="seconds"),
    pytest.param("2h45m", 9900.0, id="compound"),
    pytest.param("1.5s", 1.5, id="fraction"),
    pytest.param("0", 0.0, id="zero"),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "5 m", "fast", "1d"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("annotations", "want"), [
    pytest.param({}, RetryPolicy(), id="defaults"),
    pytest.param({"knserve.dev/async": "always"}, RetryPolicy(always_async=True), id="always"),
    pytest.param({"knserve.dev/async-max-attempts": "5", "knserve.dev/async-retry-codes": "500, 503",
                  "knserve.dev/async-min-backoff": "100ms", "knserve.dev/async-max-backoff": "2s",
                  "knserve.dev/async-max-age": "1h", "knserve.dev/async-concurrency": "2"},
                 RetryPolicy(max_attempts=5, retry_codes=frozenset({500, 503}), min_backoff=0.1, max_backoff=2.0,
                             max_age=3600.0, concurrency=2), id="every-setting"),
])
def test_parse_policy(annotations: dict[str, str], want: RetryPolicy) -> None:
    assert parse_policy(annotations) == want


@pytest.mark.parametrize(("annotations", "problems"), [
    pytest.param({"knserve.dev/async": "sometimes"},
                 ["invalid value: 'sometimes', expected 'always' or 'requested': metadata.annotations.knserve.dev/async"],
                 id="mode"),
    pytest.param({"knserve.dev/async-max-attempts": "0", "knserve.dev/async-concurrency": "x"},
                 ["expected 1 <= 0 <= 100: metadata.annotations.knserve.dev/async-max-attempts",
                  "expected 1 <= x <= 1000: metadata.annotations.knserve.dev/async-concurrency"],
                 id="every-bad-value-at-once"),
    pytest.param({"knserve.dev/async-retry-codes": "500,99"},
                 ["invalid value: '99' is not an HTTP status code (100-599): "
                  "metadata.annotations.knserve.dev/async-retry-codes"], id="codes"),
    pytest.param({"knserve.dev/async-min-backoff": "10s", "knserve.dev/async-max-backoff": "1s"},
                 ["knserve.dev/async-min-backoff (10s) is longer than knserve.dev/async-max-backoff (1s): "
                  "metadata.annotations.knserve.dev/async-min-backoff, "
                  "metadata.annotations.knserve.dev/async-max-backoff"], id="min-above-max"),
    pytest.param({"knserve.dev/async-max-age": "soon"},
                 ["invalid value: 'soon' is not a duration (write it like 500ms, 10s, 5m or 6h): "
                  "metadata.annotations.knserve.dev/async-max-age"], id="age"),
])
def test_bad_annotations_are_refused_with_every_problem(annotations: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(annotations)
    assert refused.value.problems == problems


@pytest.mark.parametrize(("attempt", "jitter", "want"), [
    pytest.param(1, 0.0, 1.0, id="first-never-below-min"),
    pytest.param(1, 1.0, 1.0, id="first-at-most-min"),
    pytest.param(3, 0.0, 2.0, id="third-lower-half"),
    pytest.param(3, 1.0, 4.0, id="third-upper"),
    pytest.param(20, 1.0, 300.0, id="capped-at-max"),
])
def test_backoff(attempt: int, jitter: float, want: float) -> None:
    assert RetryPolicy().backoff(attempt, lambda: jitter) == pytest.approx(want)


def test_retried_statuses() -> None:
    policy = RetryPolicy()
    assert [code for code in (200, 400, 404, 408, 429, 500, 501, 502, 503, 504) if policy.retries(code)] == sorted(
        DEFAULT_RETRY_CODES)
    assert policy.retries(None)  # a connection error


@pytest.mark.parametrize(("value", "want"), [
    pytest.param("7", 7.0, id="seconds"),
    pytest.param("Thu, 01 Jan 1970 00:01:40 GMT", 40.0, id="http-date"),
    pytest.param(None, None, id="absent"),
    pytest.param("later", None, id="unreadable"),
])
def test_retry_after(value: str | None, want: float | None) -> None:
    assert parse_retry_after(value, now=60.0) == want
