"""Canary analysis, the pure part: the state machine, the verdicts and the Route's pinned targets."""

from __future__ import annotations

import pytest

from knserve.request_metrics import RequestSummary
from serving.apis.conditions import format_time
from serving.apis.v1 import TrafficTarget
from serving.apis.v1.service_canary import CanaryPolicy
from serving.apis.v1.service_types import CanaryStatus
from serving.reconciler.service.resources.canary import (
    PROGRESSING,
    PROMOTED,
    ROLLED_BACK,
    STOPPED,
    advance,
    canary_route_traffic,
    judge,
    next_check_in,
    traffic_digest,
)

POLICY = CanaryPolicy(steps=(5, 25, 50), interval=30.0, max_error_rate=0.01, max_latency_p99=0.5, min_requests=50)
NOW = 1_800_000_000.0
DIGEST = traffic_digest(None)


def summary(revision: str, *, ok: float = 0, errors: float = 0, p99: float | None = 20.0) -> RequestSummary:
    requests = ok + errors
    return RequestSummary(
        namespace="default", revision=revision, since=NOW - 30, until=NOW, requests=requests,
        responses={"2xx": ok, "3xx": 0.0, "4xx": 0.0, "5xx": errors}, covered_seconds=30,
        p50_ms=p99 if requests else None, p90_ms=p99 if requests else None, p99_ms=p99 if requests else None)


def progressing(step: int = 0, *, started: float = NOW - 30) -> CanaryStatus:
    return CanaryStatus(revision_name="hello-00002", previous_revision_name="hello-00001", phase=PROGRESSING,
                        percent=POLICY.steps[step], steps=list(POLICY.steps), step=step,
                        step_started_at=format_time(started), traffic_digest=DIGEST)


PROMOTED_V1 = CanaryStatus(revision_name="hello-00001", phase=PROMOTED, percent=100, traffic_digest=DIGEST)


# --- advance ----------------------------------------------------------------------------------

def test_nothing_ready_nothing_pinned() -> None:
    assert advance(None, policy=POLICY, latest_ready=None, digest=DIGEST, now=NOW).state is None


def test_the_first_ready_revision_is_stable_at_once() -> None:
    step = advance(None, policy=POLICY, latest_ready="hello-00001", digest=DIGEST, now=NOW)
    assert step.state is not None
    assert (step.state.phase, step.state.revision_name, step.state.percent) == (PROMOTED, "hello-00001", 100)
    assert step.events == () and not step.analyse


def test_a_new_ready_revision_starts_an_analysis_at_the_first_step() -> None:
    step = advance(PROMOTED_V1, policy=POLICY, latest_ready="hello-00002", digest=DIGEST, now=NOW)
    state = step.state
    assert state is not None
    assert (state.phase, state.revision_name, state.previous_revision_name, state.percent, state.step) == (
        PROGRESSING, "hello-00002", "hello-00001", 5, 0)
    assert state.step_started_at == format_time(NOW)
    assert [event.reason for event in step.events] == ["CanaryStarted"]
    assert next_check_in(state, POLICY, NOW) == 30.0


def test_an_interval_not_over_waits_and_one_over_asks_for_analysis() -> None:
    young = advance(progressing(started=NOW - 10), policy=POLICY, latest_ready="hello-00002", digest=DIGEST, now=NOW)
    assert not young.analyse
    assert next_check_in(young.state, POLICY, NOW) == 20.0
    due = advance(progressing(started=NOW - 30), policy=POLICY, latest_ready="hello-00002", digest=DIGEST, now=NOW)
    assert due.analyse


def test_a_traffic_edit_stops_the_analysis_and_the_candidate_is_followed() -> None:
    edited = traffic_digest([TrafficTarget(revision_name="hello-00001", percent=50),
                             TrafficTarget(revision_name="hello-00002", percent=50)])
    step = advance(progressing(1), policy=POLICY, latest_ready="hello-00002", digest=edited, now=NOW)
    assert step.state is not None
    assert step.state.phase == STOPPED and step.state.traffic_digest == edited
    assert "stopped at 25%" in (step.state.message or "")
    assert [event.reason for event in step.events] == ["CanaryStopped"]
    routed = canary_route_traffic([TrafficTarget(configuration_name="hello", latest_revision=True, percent=100)],
                                  step.state)
    assert [(t.revision_name, t.percent) for t in routed] == [("hello-00002", 100)]


def test_a_newer_revision_during_an_analysis_is_analysed_against_the_stable_one() -> None:
    step = advance(progressing(1), policy=POLICY, latest_ready="hello-00003", digest=DIGEST, now=NOW)
    assert step.state is not None
    assert (step.state.revision_name, step.state.previous_revision_name, step.state.percent) == (
        "hello-00003", "hello-00001", 5)


def test_after_a_rollback_the_next_revision_is_analysed_against_the_same_stable_one() -> None:
    rolled = progressing(0).model_copy(update={"phase": ROLLED_BACK, "percent": 0})
    same = advance(rolled, policy=POLICY, latest_ready="hello-00002", digest=DIGEST, now=NOW)
    assert same.state == rolled and same.events == ()
    fresh = advance(rolled, policy=POLICY, latest_ready="hello-00003", digest=DIGEST, now=NOW)
    assert fresh.state is not None
    assert (fresh.state.phase, fresh.state.previous_revision_name) == (PROGRESSING, "hello-00001")


# --- judge ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("candidate", "previous", "phase", "percent", "words"), [
    pytest.param(summary("hello-00002", ok=100), None, PROGRESSING, 25, "gets 25%", id="healthy: next step"),
    pytest.param(summary("hello-00002", ok=80, errors=20), summary("hello-00001", ok=1900), ROLLED_BACK, 0,
                 "error rate 20% (of 100 requests) is above 1%", id="20% errors: rolled back"),
    pytest.param(summary("hello-00002", ok=100, p99=900.0), None, ROLLED_BACK, 0,
                 "p99 latency 900 ms is above 500 ms", id="slow: rolled back"),
    pytest.param(summary("hello-00002", ok=95, errors=5), summary("hello-00001", ok=90, errors=10), PROGRESSING,
                 25, "gets 25%", id="both failing, the candidate less: judged against the previous"),
    pytest.param(summary("hello-00002", ok=80, errors=20), summary("hello-00001", ok=90, errors=10), ROLLED_BACK,
                 0, "error rate 20%", id="both failing, the candidate more: rolled back"),
    pytest.param(summary("hello-00002", ok=10), None, PROGRESSING, 5, "waiting for requests (10 requests",
                 id="too few requests: wait"),
])
def test_judge(candidate: RequestSummary, previous: RequestSummary | None, phase: str, percent: int,
               words: str) -> None:
    step = judge(progressing(0), policy=POLICY, candidate=candidate, previous=previous, now=NOW)
    assert step.state is not None
    assert (step.state.phase, step.state.percent) == (phase, percent)
    assert words in (step.state.message or "")
    assert step.state.last_analysis is not None and step.state.last_analysis.requests == candidate.requests


def test_a_rollback_is_a_warning_event_and_a_step_a_normal_one() -> None:
    bad = judge(progressing(0), policy=POLICY, candidate=summary("hello-00002", ok=50, errors=50), previous=None,
                now=NOW)
    assert [(e.reason, e.warning) for e in bad.events] == [("CanaryRolledBack", True)]
    good = judge(progressing(0), policy=POLICY, candidate=summary("hello-00002", ok=60), previous=None, now=NOW)
    assert [(e.reason, e.warning) for e in good.events] == [("CanaryStep", False)]
    assert good.state is not None and good.state.step_started_at == format_time(NOW)


def test_passing_the_last_step_promotes() -> None:
    step = judge(progressing(2), policy=POLICY, candidate=summary("hello-00002", ok=500), previous=None, now=NOW)
    assert step.state is not None
    assert (step.state.phase, step.state.percent, step.state.revision_name) == (PROMOTED, 100, "hello-00002")
    assert [event.reason for event in step.events] == ["CanaryPromoted"]
    assert next_check_in(step.state, POLICY, NOW) is None


def test_too_few_requests_past_the_wait_limit_fails() -> None:
    state = progressing(0, started=NOW - POLICY.wait_limit)
    step = judge(state, policy=POLICY, candidate=summary("hello-00002", ok=3), previous=None, now=NOW)
    assert step.state is not None and step.state.phase == ROLLED_BACK
    assert "too few requests" in (step.state.message or "")


def test_metrics_unavailable_count_as_no_requests_and_say_why() -> None:
    step = judge(progressing(0), policy=POLICY, candidate=None, previous=None, now=NOW,
                 unavailable="the autoscaler's metrics could not be read: refused")
    assert step.state is not None and step.state.phase == PROGRESSING
    assert "could not be read" in (step.state.message or "")


# --- the Route's targets ----------------------------------------------------------------------

LATEST = TrafficTarget(configuration_name="hello", latest_revision=True, percent=100)


@pytest.mark.parametrize(("traffic", "state", "want"), [
    pytest.param([LATEST], PROMOTED_V1, [("hello-00001", 100, None)], id="steady: pinned to the stable revision"),
    pytest.param([LATEST], progressing(1), [("hello-00002", 25, None), ("hello-00001", 75, None)],
                 id="progressing: split"),
    pytest.param([LATEST], progressing(0).model_copy(update={"phase": ROLLED_BACK, "percent": 0}),
                 [("hello-00001", 100, None)], id="rolled back: all to the stable revision"),
    pytest.param([TrafficTarget(configuration_name="hello", latest_revision=True, percent=100),
                  TrafficTarget(configuration_name="hello", latest_revision=True, percent=0, tag="candidate"),
                  TrafficTarget(revision_name="hello-00001", percent=0, tag="stable")],
                 progressing(0),
                 [("hello-00002", 5, None), ("hello-00001", 95, None), (None, 0, "candidate"),
                  ("hello-00001", 0, "stable")],
                 id="tags with no share keep following and keep their URLs"),
    pytest.param([TrafficTarget(configuration_name="hello", latest_revision=True, percent=40, tag="current"),
                  TrafficTarget(revision_name="hello-00000", percent=60)],
                 progressing(2),
                 [("hello-00002", 20, "current"), ("hello-00001", 20, None), ("hello-00000", 60, None)],
                 id="a tagged share: the candidate's part keeps the tag"),
])
def test_canary_route_traffic(traffic: list[TrafficTarget], state: CanaryStatus,
                              want: list[tuple[str | None, int, str | None]]) -> None:
    routed = canary_route_traffic(traffic, state)
    assert [(t.revision_name, t.percent, t.tag) for t in routed] == want
    assert sum(t.percent or 0 for t in routed) == sum(t.percent or 0 for t in traffic)


def test_a_small_share_never_rounds_the_candidate_away() -> None:
    routed = canary_route_traffic([TrafficTarget(configuration_name="hello", latest_revision=True, percent=10),
                                   TrafficTarget(revision_name="hello-00000", percent=90)], progressing(0))
    assert [(t.revision_name, t.percent) for t in routed] == [
        ("hello-00002", 1), ("hello-00001", 9), ("hello-00000", 90)]


def test_traffic_that_gives_the_latest_revision_no_share_has_nothing_to_analyse() -> None:
    step = advance(PROMOTED_V1, policy=POLICY, latest_ready="hello-00002", digest=DIGEST, now=NOW, analysable=False)
    assert step.state is not None and step.events == ()
    assert (step.state.phase, step.state.revision_name) == (PROMOTED, "hello-00002")
    assert "no share to analyse" in (step.state.message or "")


def test_a_stopped_analysis_stays_stopped_when_the_edit_pinned_every_share() -> None:
    pinned = [TrafficTarget(revision_name="hello-00001", percent=50), TrafficTarget(revision_name="hello-00002",
                                                                                   percent=50)]
    digest = traffic_digest(pinned)
    stopped = advance(progressing(1), policy=POLICY, latest_ready="hello-00002", digest=digest, now=NOW,
                      analysable=False)
    assert stopped.state is not None and stopped.state.phase == STOPPED
    again = advance(stopped.state, policy=POLICY, latest_ready="hello-00002", digest=digest, now=NOW + 5,
                    analysable=False)
    assert again.state == stopped.state and again.events == ()
