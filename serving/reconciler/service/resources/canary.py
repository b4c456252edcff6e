"""Progressive delivery of a Service: which Revision is stable, which is analysed, what share
each gets, and what an analysed interval decides. Pure; no I/O.

A Service with a canary policy (``serving.apis.v1.service_canary``) never lets its Route
follow the latest ready Revision on its own: the Route's targets that follow the Service's
Configuration are pinned to named Revisions (``canary_route_traffic``), so a Revision that
becomes Ready takes no traffic before the analysis gives it some.

The state lives in the Service's ``status.canary`` (``CanaryStatus``), so a restarted or
newly elected controller goes on where the last one stopped. ``advance`` is one step of the
state machine:

- no state yet: the latest ready Revision is stable at once (nothing to compare it with);
- a ready Revision that is neither the stable one nor the one analysed last: a new analysis
  (``Progressing``), which takes the first step's share;
- ``spec.traffic`` edited while an analysis runs: the analysis ``Stopped``; the person's
  edit stands, and the Configuration-following targets follow the candidate from then on;
- an interval over: the caller fetches the candidate's (and the stable Revision's) request
  summaries for it and ``judge`` decides: pass, the next step (after the last, 100%:
  ``Promoted``); fail, every share back to the stable Revision (``RolledBack``); too few
  requests, the interval grows until ``min_requests`` or, past the policy's wait limit, fail.

A rolled-back Revision stays the Configuration's latest; the next template change starts a
new analysis against the same stable Revision.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Final

from knserve.request_metrics import RequestSummary
from serving.apis.conditions import FALSE, TRUE, UNKNOWN, format_time, parse_time
from serving.apis.v1 import TrafficTarget
from serving.apis.v1.service_canary import CanaryPolicy
from serving.apis.v1.service_lifecycle import (
    REASON_CANARY_PROGRESSING,
    REASON_CANARY_PROMOTED,
    REASON_CANARY_ROLLED_BACK,
    REASON_CANARY_STOPPED,
)
from serving.apis.v1.service_types import CanaryAnalysis, CanaryStatus

PROGRESSING: Final = REASON_CANARY_PROGRESSING
PROMOTED: Final = REASON_CANARY_PROMOTED
ROLLED_BACK: Final = REASON_CANARY_ROLLED_BACK
STOPPED: Final = REASON_CANARY_STOPPED

CONDITION_STATUS: Final = {PROGRESSING: UNKNOWN, PROMOTED: TRUE, STOPPED: TRUE, ROLLED_BACK: FALSE}


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """What ``advance`` or ``judge`` decided: the new state, events to record, and whether
    the caller must analyse the interval now (``advance`` only)."""

    state: CanaryStatus | None
    events: tuple[Event, ...] = ()
    analyse: bool = False


def traffic_digest(traffic: Sequence[TrafficTarget] | None) -> str:
    """A short digest of ``spec.traffic``: an analysis notices a person's edit by it."""
    body = json.dumps([target.to_dict() for target in traffic or []], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def stable_revision(state: CanaryStatus) -> str | None:
    """The Revision the Configuration's share goes to outside the candidate's part."""
    if state.phase in (PROGRESSING, ROLLED_BACK):
        return state.previous_revision_name
    return state.revision_name


def candidate_percent(state: CanaryStatus | None) -> int:
    """The candidate's share, in percent of the Configuration's share (0 without a candidate)."""
    if state is None or state.phase != PROGRESSING:
        return 0
    return state.percent or 0


def _started(state: CanaryStatus) -> float:
    return parse_time(state.step_started_at) or 0.0


def _progressing(state: CanaryStatus, policy: CanaryPolicy, step: int, now: float, message: str) -> CanaryStatus:
    return state.model_copy(update={
        "phase": PROGRESSING, "step": step, "percent": policy.steps[step], "steps": list(policy.steps),
        "step_started_at": format_time(now), "message": message})


def follows_latest(traffic: Sequence[TrafficTarget]) -> bool:
    """Whether any target with a share follows the Service's Configuration (the latest Revision):
    without one a new Revision takes no traffic, and there is nothing to analyse."""
    return any(not target.revision_name and target.configuration_name and target.percent for target in traffic)


def advance(
    state: CanaryStatus | None, *, policy: CanaryPolicy, latest_ready: str | None, digest: str, now: float,
    analysable: bool = True,
) -> Step:
    """``analysable`` is False when no share follows the latest Revision (``follows_latest``)."""
    if latest_ready is None:
        return Step(state)  # nothing is ready yet: nothing to pin or analyse
    if not analysable and (state is None or state.phase != PROGRESSING or state.traffic_digest == digest):
        if state is not None and state.revision_name == latest_ready and state.phase != PROGRESSING:
            return Step(state.model_copy(update={"traffic_digest": digest}))  # what it said still holds
        quiet = CanaryStatus(
            revision_name=latest_ready, phase=PROMOTED, percent=100, steps=list(policy.steps), traffic_digest=digest,
            message=f"{latest_ready} is the latest Revision; spec.traffic gives it no share to analyse.")
        return Step(quiet)
    if state is None or stable_revision(state) is None:
        first = CanaryStatus(
            revision_name=latest_ready, phase=PROMOTED, percent=100, steps=list(policy.steps),
            traffic_digest=digest,
            message=f"{latest_ready} takes all traffic: it is the first Revision the analysis knows of.")
        return Step(first)
    stable = stable_revision(state)
    if latest_ready not in (stable, state.revision_name):
        started = _progressing(
            CanaryStatus(revision_name=latest_ready, previous_revision_name=stable, traffic_digest=digest),
            policy, 0, now,
            f"{latest_ready} gets {policy.steps[0]}% while it is analysed against {stable} "
            f"(step 1 of {len(policy.steps)}).")
        return Step(started, (Event("CanaryStarted", started.message or ""),))
    if state.phase != PROGRESSING:
        if state.traffic_digest != digest:
            state = state.model_copy(update={"traffic_digest": digest})
        return Step(state)
    if state.traffic_digest != digest:
        stopped = state.model_copy(update={
            "phase": STOPPED, "percent": None, "traffic_digest": digest,
            "message": f"The analysis of {state.revision_name} stopped at {state.percent}%: spec.traffic was "
                       "edited, and the edit stands."})
        return Step(stopped, (Event("CanaryStopped", stopped.message or ""),))
    if now >= _started(state) + policy.interval:
        return Step(state, analyse=True)
    return Step(state)


def next_check_in(state: CanaryStatus | None, policy: CanaryPolicy, now: float) -> float | None:
    """Seconds until the running analysis next needs a look (None when none runs)."""
    if state is None or state.phase != PROGRESSING:
        return None
    return max(1.0, _started(state) + policy.interval - now)


def _share(value: float | None) -> str:
    return "no" if value is None else f"{value * 100:.3g}%"


def _milliseconds(value: float | None) -> str:
    return "no" if value is None else f"{value:.0f} ms"


def _breaks(
    value: float | None, bound: float, previous: float | None, previous_counts: bool,
) -> bool:
    """Whether ``value`` breaks ``bound``; a bound the previous Revision broke as well (with
    enough traffic to count) is judged against it: only doing worse fails."""
    if value is None or value <= bound:
        return False
    if previous_counts and previous is not None and previous > bound:
        return value > previous
    return True


def judge(
    state: CanaryStatus, *, policy: CanaryPolicy, candidate: RequestSummary | None,
    previous: RequestSummary | None, now: float, unavailable: str | None = None,
) -> Step:
    """Decide an analysed interval of a ``Progressing`` state. ``unavailable`` says why no
    summary could be had (then the interval counts as one without requests)."""
    name, stable = state.revision_name, state.previous_revision_name
    requests = candidate.requests if candidate is not None else 0.0
    p99 = candidate.p99_ms if candidate is not None else None
    error_rate = candidate.error_rate if candidate is not None else None
    analysis = CanaryAnalysis(
        at=format_time(now), requests=requests, error_rate=error_rate, p99_ms=p99,
        previous_requests=previous.requests if previous is not None else None,
        previous_error_rate=previous.error_rate if previous is not None else None,
        previous_p99_ms=previous.p99_ms if previous is not None else None,
    )
    state = state.model_copy(update={"last_analysis": analysis})
    elapsed = now - _started(state)

    if requests < policy.min_requests:
        why = unavailable or f"{math.floor(requests)} requests in {elapsed:.0f}s, {policy.min_requests} needed"
        if elapsed >= policy.wait_limit:
            return _rolled_back(state, f"{name} was rolled back to {stable}: too few requests to judge it "
                                       f"({why}) within {policy.wait_limit:.0f}s.")
        waiting = state.model_copy(update={"message": f"{name} gets {state.percent}%; waiting for requests ({why})."})
        return Step(waiting)

    previous_counts = previous is not None and previous.requests >= policy.min_requests
    bound_rate, bound_p99 = policy.max_error_rate, policy.max_latency_p99 * 1000.0
    if _breaks(error_rate, bound_rate, previous.error_rate if previous else None, previous_counts):
        return _rolled_back(state, f"{name} was rolled back to {stable}: error rate {_share(error_rate)} "
                                   f"(of {requests:.0f} requests) is above {_share(bound_rate)}.")
    if _breaks(p99, bound_p99, previous.p99_ms if previous else None, previous_counts):
        return _rolled_back(state, f"{name} was rolled back to {stable}: p99 latency {_milliseconds(p99)} "
                                   f"is above {_milliseconds(bound_p99)}.")

    figures = f"error rate {_share(error_rate)}, p99 {_milliseconds(p99)} over {requests:.0f} requests"
    step = (state.step or 0) + 1
    if step >= len(policy.steps):
        promoted = state.model_copy(update={
            "phase": PROMOTED, "percent": 100, "step": step, "step_started_at": format_time(now),
            "message": f"{name} was promoted: it takes all traffic ({figures} at {state.percent}%)."})
        return Step(promoted, (Event("CanaryPromoted", promoted.message or ""),))
    moved = _progressing(state, policy, step, now,
                         f"{name} gets {policy.steps[step]}% (step {step + 1} of {len(policy.steps)}; "
                         f"{figures} at {state.percent}%).")
    return Step(moved, (Event("CanaryStep", moved.message or ""),))


def _rolled_back(state: CanaryStatus, message: str) -> Step:
    rolled = state.model_copy(update={"phase": ROLLED_BACK, "percent": 0, "message": message})
    return Step(rolled, (Event("CanaryRolledBack", message, warning=True),))


def canary_route_traffic(
    traffic: Sequence[TrafficTarget], state: CanaryStatus | None,
) -> list[TrafficTarget]:
    """The Route's targets under the canary: each target that follows the Service's
    Configuration and carries a share is pinned to the stable Revision, less the candidate's
    part (which keeps the target's tag, so the canary keeps its tag URL); targets with no share
    keep following the Configuration (a tag of the latest Revision still reaches it)."""
    if state is None:
        return list(traffic)
    stable = stable_revision(state)
    candidate = state.revision_name if state.phase == PROGRESSING else None
    percent = candidate_percent(state)
    out: list[TrafficTarget] = []
    for target in traffic:
        if target.revision_name or not target.configuration_name or not target.percent or stable is None:
            out.append(target)
            continue
        share = target.percent
        # a step never rounds the candidate's part away (nor the stable one's, before 100%)
        to_candidate = min(max(1, round(share * percent / 100)), share - 1) if candidate and share > 1 else 0
        if candidate and share == 1:
            to_candidate = 1 if percent >= 50 else 0
        pinned = {"configuration_name": None, "latest_revision": False}
        if to_candidate:
            out.append(target.model_copy(update={**pinned, "revision_name": candidate, "percent": to_candidate}))
        if share - to_candidate:
            tag = None if to_candidate else target.tag
            out.append(target.model_copy(update={
                **pinned, "revision_name": stable, "percent": share - to_candidate, "tag": tag}))
    return out
