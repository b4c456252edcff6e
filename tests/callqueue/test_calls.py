"""The call state machine (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from callqueue import calls
from callqueue.calls import Call, Outcome, Response, State, TransitionError
from knserve.callpolicy import RetryPolicy

POLICY = RetryPolicy(max_attempts=3, min_backoff=1.0, max_backoff=10.0, max_age=100.0)


def a_call(**changes: object) -> Call:
    call = Call(id="c1", namespace="ns", service="fn", host="fn.ns.example.com", method="POST", path="/",
                headers=(), created=1000.0, updated=1000.0)
    return dataclasses.replace(call, **changes)  # type: ignore[arg-type]


def ok(status: int = 200) -> Outcome:
    return Outcome(Response(status, (("content-type", "text/plain"),), b"body"))


@pytest.mark.parametrize(("call", "outcome", "now", "want"), [
    pytest.param(a_call(state=State.RUNNING, attempts=1), ok(), 1001.0,
                 a_call(state=State.SUCCEEDED, attempts=1, updated=1001.0, finished_at=1001.0, last_status=200,
                        response=ok().response), id="success"),
    pytest.param(a_call(state=State.RUNNING, attempts=1), ok(404), 1001.0,
                 a_call(state=State.FAILED, attempts=1, updated=1001.0, finished_at=1001.0, last_status=404,
                        response=ok(404).response), id="final-error-is-failed"),
    pytest.param(a_call(state=State.RUNNING, attempts=1), ok(503), 1001.0,
                 a_call(state=State.QUEUED, attempts=1, updated=1001.0, next_attempt=1002.0, last_status=503,
                        response=ok(503).response), id="retry-after-backoff"),
    pytest.param(a_call(state=State.RUNNING, attempts=1), Outcome(error="refused"), 1001.0,
                 a_call(state=State.QUEUED, attempts=1, updated=1001.0, next_attempt=1002.0, last_error="refused"),
                 id="connection-error-retried"),
    pytest.param(a_call(state=State.RUNNING, attempts=1), Outcome(ok(429).response, retry_after=30.0), 1001.0,
                 a_call(state=State.QUEUED, attempts=1, updated=1001.0, next_attempt=1031.0, last_status=429,
                        response=ok(429).response), id="retry-after-header-wins"),
    pytest.param(a_call(state=State.RUNNING, attempts=3), ok(500), 1001.0,
                 a_call(state=State.DEAD, attempts=3, updated=1001.0, finished_at=1001.0, last_status=500,
                        response=ok(500).response), id="dead-after-max-attempts"),
])
def test_finish(call: Call, outcome: Outcome, now: float, want: Call) -> None:
    assert calls.finish(call, outcome, POLICY, now, lambda: 0.0) == want


def test_a_retry_past_the_max_age_is_dead() -> None:
    after = calls.finish(a_call(state=State.RUNNING, attempts=1), Outcome(ok(503).response, retry_after=200.0),
                         POLICY, 1001.0, lambda: 0.0)
    assert after.state is State.DEAD and "max age" in (after.last_error or "")


def test_start_counts_attempts_and_cancel_only_while_queued() -> None:
    running = calls.start(a_call(next_attempt=1005.0), 1005.0)
    assert (running.state, running.attempts, running.started, running.next_attempt) == (State.RUNNING, 1, 1005.0, None)
    with pytest.raises(TransitionError, match="only a queued call can be cancelled"):
        calls.cancel(running, 1006.0)
    assert calls.cancel(a_call(), 1001.0).state is State.CANCELLED


def test_replay_starts_the_attempts_anew() -> None:
    dead = a_call(state=State.DEAD, attempts=3, finished_at=1010.0, callback_status=200, callback_attempts=1)
    replayed = calls.replay(dead, 2000.0, sequence=9)
    assert (replayed.state, replayed.attempts, replayed.round, replayed.sequence, replayed.callback_status) == (
        State.QUEUED, 0, 1, 9, None)
    with pytest.raises(TransitionError):
        calls.replay(a_call(), 2000.0, sequence=10)


def test_records_round_trip_and_binary_bodies_show_as_base64() -> None:
    call = a_call(state=State.SUCCEEDED, response=Response(200, (("x", "y"),), b"\xff\x00"), finished_at=1002.0)
    assert Call.from_bytes(call.to_bytes()) == call
    view = call.status_view()
    assert view["response"] == {"status": 200, "headers": {"x": "y"}, "body": "/wA=", "bodyEncoding": "base64"}
    assert view["createdAt"] == "1970-01-01T00:16:40.000Z"


def test_ids_are_unguessable() -> None:
    ids = {calls.new_call_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 22 and i.isalnum() for i in ids)


def test_internal_and_hop_by_hop_headers_are_not_stored_with_a_call() -> None:
    from callqueue.server import kept_header

    assert [name for name in ("X-Custom", "Content-Type", "K-Network-Ingress-Token", "Knative-Serving-Revision",
                              "Connection", "Prefer", "X-Callback-Url", "Host") if kept_header(name)] == [
        "X-Custom", "Content-Type"]
