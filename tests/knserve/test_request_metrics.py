"""The request-metrics API's data: quantiles from bucket counts, JSON round trips, paths, queries."""

from __future__ import annotations

import json

import pytest

from knserve.request_metrics import (
    LATENCY_BUCKETS_MS,
    REQUESTS_API_PREFIX,
    RequestSummary,
    RevisionRequests,
    SecondSample,
    WireError,
    decode_namespace_answer,
    encode_namespace_answer,
    namespace_path,
    parse_namespace_query,
    parse_summary_query,
    quantile_ms,
    summary_path,
)

EMPTY = [0.0] * (len(LATENCY_BUCKETS_MS) + 1)


def histogram(**by_bound: float) -> list[float]:
    """Counts keyed by a bucket's upper bound: histogram(b100=4) puts 4 in the (80, 100] bucket."""
    counts = list(EMPTY)
    for key, count in by_bound.items():
        bound = key[1:]
        index = len(LATENCY_BUCKETS_MS) if bound == "inf" else LATENCY_BUCKETS_MS.index(float(bound))
        counts[index] = count
    return counts


@pytest.mark.parametrize(
    ("q", "counts", "want"),
    [
        pytest.param(0.5, EMPTY, None, id="no-requests"),
        pytest.param(0.5, histogram(b5=10), 2.5, id="first-bucket-starts-at-zero"),
        pytest.param(0.5, histogram(b100=10), 90.0, id="middle-of-one-bucket"),
        pytest.param(0.99, histogram(b100=10), 99.8, id="near-the-top-of-one-bucket"),
        pytest.param(0.9, histogram(b10=90, b500=10), 10.0, id="top-of-the-fast-bucket"),
        pytest.param(0.99, histogram(b10=90, b500=10), 495.0, id="p99-in-the-slow-bucket"),
        pytest.param(0.5, histogram(b10=50, b20=50), 10.0, id="boundary-goes-to-the-lower-bucket"),
        pytest.param(0.99, histogram(b5=1, binf=99), 100000.0, id="inf-bucket-is-the-highest-bound"),
        pytest.param(1.0, histogram(b40=3, b60=1), 60.0, id="max"),
        pytest.param(0.0, histogram(b40=3), 20.0, id="min-is-the-lower-bound"),
    ],
)
def test_quantile_interpolates_like_histogram_quantile(q: float, counts: list[float], want: float | None) -> None:
    got = quantile_ms(q, counts)
    if want is None:
        assert got is None
    else:
        assert got == pytest.approx(want)


def test_quantile_refuses_a_value_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="outside"):
        quantile_ms(1.5, histogram(b5=1))


def make_summary(**overrides: object) -> RequestSummary:
    fields: dict[str, object] = {
        "namespace": "default", "revision": "hello-00002", "since": 1000.0, "until": 1030.0,
        "responses": {"2xx": 95.0, "5xx": 5.0}, "latency_counts": histogram(b10=90, b500=10),
        "covered_seconds": 30,
    }
    fields.update(overrides)
    return RequestSummary.from_counts(**fields)  # type: ignore[arg-type]


def test_summary_from_counts() -> None:
    summary = make_summary()
    assert summary.requests == 100.0
    assert summary.responses == {"2xx": 95.0, "3xx": 0.0, "4xx": 0.0, "5xx": 5.0}
    assert summary.error_rate == pytest.approx(0.05)
    assert summary.p50_ms == pytest.approx(5.0 + 5.0 * 50 / 90)
    assert summary.p90_ms == pytest.approx(10.0)
    assert summary.p99_ms == pytest.approx(495.0)


def test_summary_without_requests_has_no_rate_and_no_quantiles() -> None:
    summary = make_summary(responses={}, latency_counts=EMPTY, covered_seconds=0)
    assert summary.requests == 0
    assert summary.error_rate is None
    assert (summary.p50_ms, summary.p90_ms, summary.p99_ms) == (None, None, None)
    assert summary.to_json()["errorRate"] is None
    assert summary.to_json()["responses"] == {"2xx": 0.0, "3xx": 0.0, "4xx": 0.0, "5xx": 0.0}


def test_summary_json_has_the_contract_keys_and_round_trips() -> None:
    summary = make_summary()
    body = json.loads(json.dumps(summary.to_json()))
    assert set(body) == {
        "namespace", "revision", "since", "until", "requests", "responses", "coveredSeconds",
        "p50Ms", "p90Ms", "p99Ms", "errorRate",
    }
    assert body["coveredSeconds"] == 30
    assert body["errorRate"] == pytest.approx(0.05)
    assert RequestSummary.from_json(body) == summary


def test_summary_keeps_an_informational_class_it_saw() -> None:
    summary = make_summary(responses={"1xx": 2.0, "2xx": 2.0}, latency_counts=histogram(b5=4))
    assert summary.requests == 4.0
    assert RequestSummary.from_json(summary.to_json()).responses["1xx"] == 2.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"requests": "ten"}, "summary.requests is 'ten'; expected a finite number", id="requests"),
        pytest.param({"responses": [1]}, "summary.responses is list; expected a JSON object", id="responses"),
        pytest.param({"coveredSeconds": 1.5}, "summary.coveredSeconds is 1.5; expected a whole number", id="covered"),
        pytest.param({"revision": ""}, "summary.revision is ''; expected a non-empty string", id="revision"),
        pytest.param({"p99Ms": "slow"}, "summary.p99Ms is 'slow'", id="p99"),
    ],
)
def test_summary_from_json_says_which_field_is_wrong(change: dict[str, object], message: str) -> None:
    body = make_summary().to_json() | change
    with pytest.raises(WireError, match=message.replace(".", r"\.")):
        RequestSummary.from_json(body)


def test_summary_from_json_refuses_a_list() -> None:
    with pytest.raises(WireError, match="summary is list; expected a JSON object"):
        RequestSummary.from_json([])


def test_second_sample_round_trips() -> None:
    sample = SecondSample(t=1000.0, requests=10.0, errors=1.0, p50_ms=7.5, p99_ms=None, concurrency=0.25)
    body = sample.to_json()
    assert body == {"t": 1000.0, "requests": 10.0, "errors": 1.0, "p50Ms": 7.5, "p99Ms": None, "concurrency": 0.25}
    assert SecondSample.from_json(json.loads(json.dumps(body))) == sample


def test_namespace_answer_round_trips_with_and_without_series() -> None:
    with_series = RevisionRequests(
        summary=make_summary(),
        desired_pods=2,
        ready_pods=1,
        series=(SecondSample(t=1000.0, requests=3.0, errors=0.0, p50_ms=4.0, p99_ms=5.0, concurrency=1.0),),
    )
    without = RevisionRequests(summary=make_summary(revision="hello-00001"), desired_pods=-1, ready_pods=None)
    body = json.loads(json.dumps(encode_namespace_answer([with_series, without])))
    assert body["revisions"][0]["desiredPods"] == 2
    assert body["revisions"][0]["series"][0]["requests"] == 3.0
    assert body["revisions"][1]["readyPods"] is None
    assert "series" not in body["revisions"][1]
    assert body["revisions"][1]["revision"] == "hello-00001"
    assert decode_namespace_answer(body) == [with_series, without]


def test_namespace_answer_needs_a_revisions_list() -> None:
    with pytest.raises(WireError, match='"revisions" list'):
        decode_namespace_answer({"items": []})


def test_paths() -> None:
    assert summary_path("default", "hello-00002", since=1000, until=1030.5) == (
        "/api/v1/requests/default/hello-00002?since=1000&until=1030.5"
    )
    assert namespace_path("default", window=60, series=True) == "/api/v1/requests/default?window=60&series=1"
    assert namespace_path("default", window=60, series=False) == "/api/v1/requests/default?window=60&series=0"
    assert summary_path("a/b", "r", since=0, until=1).startswith(REQUESTS_API_PREFIX + "/a%2Fb/r?")


def test_paths_parse_back() -> None:
    assert parse_summary_query({"since": "1000", "until": "1030.5"}) == (1000.0, 1030.5)
    assert parse_namespace_query({"window": "60", "series": "1"}) == (60.0, True)
    assert parse_namespace_query({}) == (60.0, False)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"until": "10"}, "'since' is missing", id="missing"),
        pytest.param({"since": "soon", "until": "10"}, "since='soon' is not a number", id="not-a-number"),
        pytest.param({"since": "10", "until": "10"}, r"until \(10\) must be after since \(10\)", id="empty-range"),
        pytest.param({"since": "nan", "until": "10"}, "must be a finite number", id="nan"),
    ],
)
def test_bad_summary_queries_are_sentences(query: dict[str, str], message: str) -> None:
    with pytest.raises(WireError, match=message):
        parse_summary_query(query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"window": "0"}, "window=0 must be more than 0 and at most 900 seconds", id="zero"),
        pytest.param({"window": "901"}, "at most 900 seconds", id="too-long"),
        pytest.param({"series": "yes"}, "series='yes' must be 1 or 0", id="series"),
    ],
)
def test_bad_namespace_queries_are_sentences(query: dict[str, str], message: str) -> None:
    with pytest.raises(WireError, match=message):
        parse_namespace_query(query)
