"""The Stat wire's response counts and latency histogram, and stats from reporters without them."""

from __future__ import annotations

import json

import pytest

from knserve.stats_wire import (
    LATENCY_COUNTS_LENGTH,
    RevisionStat,
    Stat,
    WireError,
    decode_stat,
    decode_stat_batch,
    encode_stat,
    encode_stat_batch,
    response_class,
)


def test_a_stat_without_responses_from_an_older_reporter_reads_as_none() -> None:
    old = {"podName": "p", "averageConcurrentRequests": 1.0, "requestCount": 3}
    stat = decode_stat(json.dumps(old))
    assert stat.responses == {} and stat.latency_counts == ()
    assert "responses" not in stat.to_json() and "latencyCounts" not in stat.to_json()  # an older reader sees no change


def test_responses_and_latency_counts_round_trip_in_a_stat_and_a_batch() -> None:
    counts = tuple(float(index % 3) for index in range(LATENCY_COUNTS_LENGTH))
    stat = Stat("p", 1.0, responses={"2xx": 7.0, "5xx": 1.0}, latency_counts=counts)
    assert decode_stat(encode_stat(stat)) == stat
    [message] = decode_stat_batch(encode_stat_batch([RevisionStat("default", "r", stat)]))
    assert message.stat == stat


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"responses": [1]}, "stat.responses is list; expected a JSON object of counts by class",
                     id="responses-not-an-object"),
        pytest.param({"responses": {"ok": 1}}, "stat.responses has the key 'ok'; expected a status class",
                     id="not-a-class"),
        pytest.param({"responses": {"5xx": -1}}, r"stat.responses.5xx is -1.0; expected a count", id="negative"),
        pytest.param({"latencyCounts": [1, 2]}, f"must be a list of {LATENCY_COUNTS_LENGTH} counts",
                     id="wrong-length"),
        pytest.param({"latencyCounts": ["a"] * LATENCY_COUNTS_LENGTH}, r"stat.latencyCounts\[0\] is 'a'",
                     id="not-a-number"),
    ],
)
def test_bad_responses_are_refused_with_a_sentence(extra: dict[str, object], message: str) -> None:
    with pytest.raises(WireError, match=message):
        Stat.from_json({"averageConcurrentRequests": 0} | extra)


@pytest.mark.parametrize(("code", "want"), [(101, "1xx"), (200, "2xx"), (499, "4xx"), (504, "5xx")])
def test_response_class(code: int, want: str) -> None:
    assert response_class(code) == want
