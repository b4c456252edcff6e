"""What the dashboard's pages show, built from Knative objects and the autoscaler's request metrics.

Pure: every function takes the objects (JSON dicts as the API server returns them), the
metrics entries (``knserve.request_metrics.RevisionRequests``) and ``now``, and returns plain
dataclasses the templates render. Nothing here reads the network or the clock.

A missing metric is ``None`` and renders as "no data": the metrics API may not answer yet,
or may keep nothing for a revision that had no requests in its window.
"""

from __future__ import annotations

import datetime
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from knserve.clock import parse_time
from knserve.request_metrics import RevisionRequests

JSON = dict[str, Any]
SERVICE_LABEL = "serving.knative.dev/service"
PAGE_SIZE = 50
CANARY_CONDITION = "CanaryReady"


# --- small readers ----------------------------------------------------------------------------

def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The status condition of type ``kind``, or an empty mapping."""
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


def ready_state(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(status, reason, message) of the Ready condition; "Unknown" when there is none yet."""
    ready = condition(obj, "Ready")
    return (str(ready.get("status") or "Unknown"), str(ready.get("reason") or ""), str(ready.get("message") or ""))


def host_of(service: Mapping[str, Any]) -> str | None:
    """The host name of the Service's URL (what the ingress routes on), None before it has one."""
    url = (service.get("status") or {}).get("url")
    if not url:
        return None
    return urlsplit(str(url)).hostname


def age(created: str | None, now: datetime.datetime) -> str:
    """"3m", "2h", "5d" since an RFC 3339 time, or "" when unknown."""
    when = parse_time(created)
    if when is None:
        return ""
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- the Services list ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Traffic:
    """The requests of a set of revisions over a window, summed; None fields have no data."""

    requests_per_second: float | None = None
    error_rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_of: str | None = None  # the revision the quantiles are of (the busiest)


def traffic_of(entries: Iterable[RevisionRequests]) -> Traffic:
    """Requests/s and 5xx share over the revisions of ``entries``; the quantiles are those of the
    busiest revision (quantiles of different histograms cannot be added)."""
    entries = list(entries)
    if not entries:
        return Traffic()
    requests = sum(entry.summary.requests for entry in entries)
    window = max(entry.summary.until - entry.summary.since for entry in entries)
    errors = sum(entry.summary.responses_of("5xx") for entry in entries)
    busiest = max(entries, key=lambda entry: entry.summary.requests)
    has_requests = busiest.summary.requests > 0
    return Traffic(
        requests_per_second=requests / window if window > 0 else None,
        error_rate=errors / requests if requests > 0 else None,
        p50_ms=busiest.summary.p50_ms if has_requests else None,
        p99_ms=busiest.summary.p99_ms if has_requests else None,
        latency_of=busiest.summary.revision if has_requests else None,
    )


@dataclass(frozen=True, slots=True)
class ServiceRow:
    namespace: str
    name: str
    url: str | None
    ready: str
    reason: str
    message: str
    latest_revision: str | None
    traffic: Traffic
    pods: int | None  # ready pods over the Service's revisions (their status.actualReplicas)


def service_row(
    service: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, RevisionRequests] | None,
) -> ServiceRow:
    """One line of the list. ``revisions`` are the Service's; ``metrics`` the namespace's
    entries by revision name (None when the metrics API did not answer)."""
    metadata = service.get("metadata") or {}
    status = service.get("status") or {}
    ready, reason, message = ready_state(service)
    names = [str((revision.get("metadata") or {}).get("name")) for revision in revisions]
    entries = [metrics[name] for name in names if name in metrics] if metrics is not None else []
    replicas = [(revision.get("status") or {}).get("actualReplicas") for revision in revisions]
    known = [int(count) for count in replicas if isinstance(count, int)]
    return ServiceRow(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        url=status.get("url"),
        ready=ready,
        reason=reason,
        message=message,
        latest_revision=status.get("latestReadyRevisionName") or status.get("latestCreatedRevisionName"),
        traffic=traffic_of(entries),
        pods=sum(known) if known else None,
    )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a filtered, sorted list."""

    items: tuple[Any, ...]
    total: int  # matching items over all pages
    number: int  # 1-based, clamped into range
    pages: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_of_services(
    services: Iterable[Mapping[str, Any]], *, search: str = "", number: int = 1, size: int = PAGE_SIZE,
) -> Page:
    """The Services whose name contains ``search`` (case-insensitive), sorted by namespace and
    name, cut to page ``number`` of ``size``."""
    needle = search.strip().lower()
    matching = [service for service in services
                if needle in str((service.get("metadata") or {}).get("name") or "").lower()]
    matching.sort(key=lambda service: ((service.get("metadata") or {}).get("namespace") or "",
                                       (service.get("metadata") or {}).get("name") or ""))
    pages = max(1, math.ceil(len(matching) / size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(items=tuple(matching[start:start + size]), total=len(matching), number=number, pages=pages)


# --- one Service ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RevisionView:
    name: str
    ready: str
    reason: str
    created: str  # age
    created_at: str
    desired_replicas: int | None
    actual_replicas: int | None
    percent: int  # share of traffic the Service's status routes to it
    tags: tuple[str, ...]
    latest_ready: bool
    can_roll_back: bool  # ready, and not already the only revision taking traffic
    traffic: Traffic


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def revision_views(
    service: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, RevisionRequests] | None, now: datetime.datetime,
) -> list[RevisionView]:
    """The Service's revisions, newest first, each with its share of traffic and tags as the
    Service's status says the Route serves them."""
    status = service.get("status") or {}
    latest_ready = status.get("latestReadyRevisionName")
    percent: dict[str, int] = {}
    tags: dict[str, list[str]] = {}
    for target in status.get("traffic") or []:
        name = target.get("revisionName") or (latest_ready if target.get("latestRevision") else None)
        if not name:
            continue
        percent[name] = percent.get(name, 0) + int(target.get("percent") or 0)
        if target.get("tag"):
            tags.setdefault(name, []).append(str(target["tag"]))
    views = []
    ordered = sorted(revisions, key=lambda revision: ((revision.get("metadata") or {}).get("creationTimestamp") or "",
                                                      (revision.get("metadata") or {}).get("name") or ""),
                     reverse=True)
    for revision in ordered:
        metadata = revision.get("metadata") or {}
        name = str(metadata.get("name") or "")
        ready, reason, _ = ready_state(revision)
        revision_status = revision.get("status") or {}
        entry = metrics.get(name) if metrics is not None else None
        views.append(RevisionView(
            name=name, ready=ready, reason=reason,
            created=age(metadata.get("creationTimestamp"), now), created_at=str(metadata.get("creationTimestamp") or ""),
            desired_replicas=int_or_none(revision_status.get("desiredReplicas")),
            actual_replicas=int_or_none(revision_status.get("actualReplicas")),
            percent=percent.get(name, 0), tags=tuple(sorted(tags.get(name, ()))),
            latest_ready=name == latest_ready,
            can_roll_back=ready == "True" and percent.get(name, 0) != 100,
            traffic=traffic_of([entry] if entry is not None else []),
        ))
    return views


@dataclass(frozen=True, slots=True)
class CanaryView:
    """The canary analysis of the Service (status.canary and the CanaryReady condition)."""

    state: str  # the condition's status
    reason: str
    message: str
    revision: str | None
    previous_revision: str | None
    phase: str | None
    percent: int | None
    steps: tuple[int, ...]
    step_started_at: str | None
    last_requests: float | None
    last_error_rate: float | None
    last_p99_ms: float | None
    last_at: str | None
    previous_requests: float | None = None  # the previous Revision over the same interval
    previous_error_rate: float | None = None
    previous_p99_ms: float | None = None


def canary_view(service: Mapping[str, Any]) -> CanaryView | None:
    """None when the Service has no canary analysis (neither status.canary nor the condition)."""
    canary = (service.get("status") or {}).get("canary")
    ready = condition(service, CANARY_CONDITION)
    if not isinstance(canary, Mapping) and not ready:
        return None
    canary = canary if isinstance(canary, Mapping) else {}
    found = canary.get("lastAnalysis")
    analysis: Mapping[str, Any] = found if isinstance(found, Mapping) else {}

    def number(value: object) -> float | None:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    percent = canary.get("percent")
    return CanaryView(
        state=str(ready.get("status") or "Unknown"),
        reason=str(ready.get("reason") or ""),
        message=str(canary.get("message") or ready.get("message") or ""),
        revision=canary.get("revisionName"),
        previous_revision=canary.get("previousRevisionName"),
        phase=canary.get("phase"),
        percent=int(percent) if isinstance(percent, (int, float)) and not isinstance(percent, bool) else None,
        steps=tuple(int(step) for step in canary.get("steps") or [] if isinstance(step, (int, float))),
        step_started_at=canary.get("stepStartedAt"),
        last_requests=number(analysis.get("requests")),
        last_error_rate=number(analysis.get("errorRate")),
        last_p99_ms=number(analysis.get("p99Ms")),
        last_at=analysis.get("at"),
        previous_requests=number(analysis.get("previousRequests")),
        previous_error_rate=number(analysis.get("previousErrorRate")),
        previous_p99_ms=number(analysis.get("previousP99Ms")),
    )


@dataclass(frozen=True, slots=True)
class EventView:
    type: str
    reason: str
    object: str
    message: str
    count: int
    last_seen: str  # age


def event_views(events: Iterable[Mapping[str, Any]], object_names: Iterable[str], now: datetime.datetime,
                *, limit: int = 20) -> list[EventView]:
    """The newest ``limit`` events about the named objects (the Service and what it owns)."""
    wanted = set(object_names)
    chosen = []
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("name") not in wanted:
            continue
        last = (event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {})
                .get("creationTimestamp") or "")
        chosen.append((str(last), event))
    chosen.sort(key=lambda pair: pair[0], reverse=True)
    return [EventView(
        type=str(event.get("type") or ""), reason=str(event.get("reason") or ""),
        object=f"{(event.get('involvedObject') or {}).get('kind', '')}/{(event.get('involvedObject') or {}).get('name', '')}",
        message=str(event.get("message") or ""), count=int(event.get("count") or 1), last_seen=age(last or None, now),
    ) for last, event in chosen[:limit]]


# --- live charts ------------------------------------------------------------------------------

@dataclass
class ReplicaHistory:
    """Ready pods per revision, one point per frame, for as long as a page watches (the metrics
    API's series has no pod counts per second)."""

    capacity: int = 300
    points: deque[tuple[float, dict[str, int | None]]] = field(default_factory=deque)

    def record(self, t: float, pods: Mapping[str, int | None]) -> None:
        self.points.append((t, dict(pods)))
        while len(self.points) > self.capacity:
            self.points.popleft()

    def at(self, t: float, revision: str) -> int | None:
        for when, pods in reversed(self.points):
            if when <= t:
                return pods.get(revision)
        return None


def chart_frame(
    revisions: Sequence[str], entries: Mapping[str, RevisionRequests] | None, *, now: float, seconds: int,
    replicas: ReplicaHistory, actual_replicas: Mapping[str, int | None],
) -> dict[str, Any]:
    """One server-sent frame for a Service's charts: a shared time axis of the last ``seconds``
    whole seconds and, per chart, one list per revision aligned with it (None where there is no
    sample). ``noData`` says why charts are empty when the metrics API gave nothing."""
    end = math.floor(now)
    axis = [float(t) for t in range(end - seconds, end)]
    pods = {name: (entries[name].ready_pods if entries is not None and name in entries and
                   entries[name].ready_pods is not None else actual_replicas.get(name)) for name in revisions}
    replicas.record(float(end - 1), pods)  # what is ready now stands for the last whole second
    charts: dict[str, dict[str, list[float | None]]] = {
        "requests": {}, "errors": {}, "p50": {}, "p99": {}, "replicas": {}}
    for name in revisions:
        entry = entries.get(name) if entries is not None else None
        samples = {sample.t: sample for sample in (entry.series or ())} if entry is not None else {}
        charts["requests"][name] = [samples[t].requests if t in samples else None for t in axis]
        charts["errors"][name] = [samples[t].errors if t in samples else None for t in axis]
        charts["p50"][name] = [samples[t].p50_ms if t in samples else None for t in axis]
        charts["p99"][name] = [samples[t].p99_ms if t in samples else None for t in axis]
        history = [replicas.at(t, name) for t in axis]
        charts["replicas"][name] = [float(count) if count is not None else None for count in history]
    no_data = None
    if entries is None:
        no_data = "no data: the autoscaler's request metrics API did not answer"
    elif not any(name in entries for name in revisions):
        no_data = "no data: the autoscaler keeps no requests for these revisions in this window"
    return {"t": axis, "revisions": list(revisions), "charts": charts, "noData": no_data,
            "pods": {name: count for name, count in pods.items()}}
