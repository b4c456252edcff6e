"""Per-revision request metrics: the read API the autoscaler serves and its readers share.

Pure data, (de)serialisation, quantiles and URL paths; no I/O. The autoscaler keeps, per
revision, per-second counts of responses by status class and a latency histogram (fed by the
queue-proxies' and the activator's stats, see ``knserve.stats_wire.Stat``); it answers, on
its metrics port (9090, Service ``autoscaler.knative-serving`` port ``http-metrics``):

- ``GET /api/v1/requests/{namespace}/{revision}?since=S&until=U`` (unix seconds, ``S < U``):
  one :class:`RequestSummary` over ``[S, U)``; ``404`` with a sentence for a revision it
  keeps nothing for, ``400`` with a sentence for a bad query.
- ``GET /api/v1/requests/{namespace}?window=W&series=1``: ``{"revisions": [...]}``, one
  :class:`RevisionRequests` per revision of the namespace, summarised over the last ``W``
  seconds, each with the autoscaler's desired and ready pods and (with ``series=1``) one
  :class:`SecondSample` per second of the window.

Latency is the queue-proxy's total time (or the activator's, for requests it answered
itself), in milliseconds, in Knative's buckets :data:`LATENCY_BUCKETS_MS`; quantiles are
interpolated inside a bucket as Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from knserve.stats_wire import LATENCY_BUCKETS_MS, RESPONSE_CLASSES, WireError

__all__ = [
    "LATENCY_BUCKETS_MS",
    "MAX_WINDOW_SECONDS",
    "REQUESTS_API_PREFIX",
    "RESPONSE_CLASSES",
    "RequestSummary",
    "RevisionRequests",
    "SecondSample",
    "WireError",
    "namespace_path",
    "parse_namespace_query",
    "parse_summary_query",
    "quantile_ms",
    "summary_path",
]

REQUESTS_API_PREFIX: Final = "/api/v1/requests"
MAX_WINDOW_SECONDS: Final = 15 * 60  # what the autoscaler keeps


def quantile_ms(q: float, bucket_counts: Sequence[float]) -> float | None:
    """The ``q`` quantile (0..1) of a histogram in :data:`LATENCY_BUCKETS_MS`, or None when empty.

    ``bucket_counts`` holds one count per bucket (not cumulative), the last one for
    ``+Inf``. Inside a bucket the value is interpolated linearly between its bounds (the
    first bucket starts at 0); a quantile in the ``+Inf`` bucket is the highest finite bound.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    total = float(sum(bucket_counts))
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for index, count in enumerate(bucket_counts):
        if count <= 0:
            continue
        if cumulative + count >= rank:
            if index >= len(LATENCY_BUCKETS_MS):
                return LATENCY_BUCKETS_MS[-1]
            lower = LATENCY_BUCKETS_MS[index - 1] if index > 0 else 0.0
            upper = LATENCY_BUCKETS_MS[index]
            return lower + (upper - lower) * max(0.0, rank - cumulative) / count
        cumulative += count
    return LATENCY_BUCKETS_MS[-1]  # rounding left the rank past the last count


def _number(obj: Mapping[str, Any], key: str, *, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WireError(f"{where}.{key} is {value!r}; expected a finite number")
    return float(value)


def _optional_number(obj: Mapping[str, Any], key: str, *, where: str) -> float | None:
    if obj.get(key) is None:
        return None
    return _number(obj, key, where=where)


def _text(obj: Mapping[str, Any], key: str, *, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{where}.{key} is {value!r}; expected a non-empty string")
    return value


def _mapping(obj: object, *, where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise WireError(f"{where} is {type(obj).__name__}; expected a JSON object")
    return obj


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """One revision's responses over ``[since, until)`` (unix seconds)."""

    namespace: str
    revision: str
    since: float
    until: float
    requests: float  # all responses; a float because sampled scrapes extrapolate
    responses: Mapping[str, float]  # by class: "2xx".."5xx" always (0 when none), "1xx" when seen
    covered_seconds: int  # seconds of the range with any stat for the revision
    p50_ms: float | None  # None when there were no requests
    p90_ms: float | None
    p99_ms: float | None

    @classmethod
    def from_counts(
        cls,
        *,
        namespace: str,
        revision: str,
        since: float,
        until: float,
        responses: Mapping[str, float],
        latency_counts: Sequence[float],
        covered_seconds: int,
    ) -> RequestSummary:
        """A summary from summed class counts and a summed latency histogram."""
        requests = float(sum(responses.values()))
        return cls(
            namespace=namespace,
            revision=revision,
            since=since,
            until=until,
            requests=requests,
            responses={**{name: 0.0 for name in RESPONSE_CLASSES}, **{k: float(v) for k, v in responses.items()}},
            covered_seconds=covered_seconds,
            p50_ms=quantile_ms(0.5, latency_counts) if requests > 0 else None,
            p90_ms=quantile_ms(0.9, latency_counts) if requests > 0 else None,
            p99_ms=quantile_ms(0.99, latency_counts) if requests > 0 else None,
        )

    def responses_of(self, response_class: str) -> float:
        return float(self.responses.get(response_class, 0.0))

    @property
    def error_rate(self) -> float | None:
        """The share of 5xx responses, None when there were no requests."""
        if self.requests <= 0:
            return None
        return self.responses_of("5xx") / self.requests

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "revision": self.revision,
            "since": self.since,
            "until": self.until,
            "requests": self.requests,
            "responses": {**{name: 0.0 for name in RESPONSE_CLASSES}, **self.responses},
            "coveredSeconds": self.covered_seconds,
            "p50Ms": self.p50_ms,
            "p90Ms": self.p90_ms,
            "p99Ms": self.p99_ms,
            "errorRate": self.error_rate,
        }

    @classmethod
    def from_json(cls, obj: object, *, where: str = "summary") -> RequestSummary:
        """Read a summary; raises :class:`WireError` with a sentence naming the bad field."""
        body = _mapping(obj, where=where)
        responses_obj = _mapping(body.get("responses"), where=f"{where}.responses")
        responses: dict[str, float] = {name: 0.0 for name in RESPONSE_CLASSES}
        for name in responses_obj:
            responses[str(name)] = _number(responses_obj, name, where=f"{where}.responses")
        covered = _number(body, "coveredSeconds", where=where)
        if covered != int(covered) or covered < 0:
            raise WireError(f"{where}.coveredSeconds is {covered!r}; expected a whole number of seconds, 0 or more")
        return cls(
            namespace=_text(body, "namespace", where=where),
            revision=_text(body, "revision", where=where),
            since=_number(body, "since", where=where),
            until=_number(body, "until", where=where),
            requests=_number(body, "requests", where=where),
            responses=responses,
            covered_seconds=int(covered),
            p50_ms=_optional_number(body, "p50Ms", where=where),
            p90_ms=_optional_number(body, "p90Ms", where=where),
            p99_ms=_optional_number(body, "p99Ms", where=where),
        )


@dataclass(frozen=True, slots=True)
class SecondSample:
    """One second of one revision, for graphs: responses, 5xx, two quantiles and concurrency."""

    t: float  # the second's start, unix seconds
    requests: float
    errors: float  # 5xx responses
    p50_ms: float | None  # None without requests
    p99_ms: float | None
    concurrency: float  # average concurrent requests over the second, all reporters

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "requests": self.requests,
            "errors": self.errors,
            "p50Ms": self.p50_ms,
            "p99Ms": self.p99_ms,
            "concurrency": self.concurrency,
        }

    @classmethod
    def from_json(cls, obj: object, *, where: str = "sample") -> SecondSample:
        body = _mapping(obj, where=where)
        return cls(
            t=_number(body, "t", where=where),
            requests=_number(body, "requests", where=where),
            errors=_number(body, "errors", where=where),
            p50_ms=_optional_number(body, "p50Ms", where=where),
            p99_ms=_optional_number(body, "p99Ms", where=where),
            concurrency=_number(body, "concurrency", where=where),
        )


@dataclass(frozen=True, slots=True)
class RevisionRequests:
    """One entry of the namespace answer: a summary, the pods, and (when asked) the series."""

    summary: RequestSummary
    desired_pods: int  # -1 when the autoscaler has not decided yet
    ready_pods: int | None  # None when unknown
    series: tuple[SecondSample, ...] | None = field(default=None)  # only with series=1

    def to_json(self) -> dict[str, Any]:
        body = self.summary.to_json()
        body["desiredPods"] = self.desired_pods
        body["readyPods"] = self.ready_pods
        if self.series is not None:
            body["series"] = [sample.to_json() for sample in self.series]
        return body

    @classmethod
    def from_json(cls, obj: object, *, where: str = "revision") -> RevisionRequests:
        body = _mapping(obj, where=where)
        desired = _number(body, "desiredPods", where=where)
        ready = _optional_number(body, "readyPods", where=where)
        series_obj = body.get("series")
        series: tuple[SecondSample, ...] | None = None
        if series_obj is not None:
            if not isinstance(series_obj, list):
                raise WireError(f"{where}.series is {type(series_obj).__name__}; expected a list")
            series = tuple(
                SecondSample.from_json(sample, where=f"{where}.series[{index}]")
                for index, sample in enumerate(series_obj)
            )
        return cls(
            summary=RequestSummary.from_json(body, where=where),
            desired_pods=int(desired),
            ready_pods=None if ready is None else int(ready),
            series=series,
        )


def encode_namespace_answer(entries: Iterable[RevisionRequests]) -> dict[str, Any]:
    """The JSON body of the namespace endpoint."""
    return {"revisions": [entry.to_json() for entry in entries]}


def decode_namespace_answer(obj: object) -> list[RevisionRequests]:
    """Read the JSON body of the namespace endpoint."""
    body = _mapping(obj, where="answer")
    revisions = body.get("revisions")
    if not isinstance(revisions, list):
        raise WireError('answer must be a JSON object with a "revisions" list')
    return [RevisionRequests.from_json(entry, where=f"revisions[{index}]") for index, entry in enumerate(revisions)]


def _format_seconds(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def summary_path(namespace: str, revision: str, *, since: float, until: float) -> str:
    """The path (with query) of one revision's summary over ``[since, until)``."""
    return (
        f"{REQUESTS_API_PREFIX}/{quote(namespace, safe='')}/{quote(revision, safe='')}"
        f"?since={_format_seconds(since)}&until={_format_seconds(until)}"
    )


def namespace_path(namespace: str, *, window: float, series: bool) -> str:
    """The path (with query) of every revision of ``namespace`` over the last ``window`` seconds."""
    return (
        f"{REQUESTS_API_PREFIX}/{quote(namespace, safe='')}"
        f"?window={_format_seconds(window)}&series={1 if series else 0}"
    )


def _query_seconds(query: Mapping[str, str], key: str) -> float:
    raw = query.get(key)
    if raw is None:
        raise WireError(f"the query parameter {key!r} is missing; give it in unix seconds")
    try:
        value = float(raw)
    except ValueError:
        raise WireError(f"the query parameter {key}={raw!r} is not a number; give it in seconds") from None
    if not math.isfinite(value) or value < 0:
        raise WireError(f"the query parameter {key}={raw!r} must be a finite number of seconds, 0 or more")
    return value


def parse_summary_query(query: Mapping[str, str]) -> tuple[float, float]:
    """``(since, until)`` from a summary query; raises :class:`WireError` with a sentence."""
    since = _query_seconds(query, "since")
    until = _query_seconds(query, "until")
    if until <= since:
        raise WireError(f"until ({_format_seconds(until)}) must be after since ({_format_seconds(since)})")
    return since, until


def parse_namespace_query(query: Mapping[str, str]) -> tuple[float, bool]:
    """``(window, series)`` from a namespace query (window 60 s by default, up to 15 minutes)."""
    window = _query_seconds(query, "window") if "window" in query else 60.0
    if not 0 < window <= MAX_WINDOW_SECONDS:
        raise WireError(f"window={_format_seconds(window)} must be more than 0 and at most {MAX_WINDOW_SECONDS} seconds")
    raw_series = query.get("series", "0")
    if raw_series not in ("0", "1", "true", "false"):
        raise WireError(f"the query parameter series={raw_series!r} must be 1 or 0")
    return window, raw_series in ("1", "true")
