"""The autoscaling contracts shared by the queue-proxy, the activator, the autoscaler and the ingress.

Pure data and (de)serialisation; no I/O. This module is the neutral ground that lets
``activator/``, ``autoscaler/`` and ``queueproxy/`` agree on bytes without importing
each other.

1. Per-pod stats (queue-proxy -> autoscaler): ``GET http://<podIP>:9090/stats`` answers one
   JSON object with Knative's Stat fields (see ``knserve.networking``); :class:`Stat` reads
   and writes it.

2. Activator -> autoscaler: ``POST http://autoscaler.knative-serving:8080/stats`` with a
   JSON body ``{"stats": [{"namespace": ns, "revision": name, "stat": {<Stat>}}, ...]}``.
   The activator sends one batch a second with the time-weighted average concurrency and
   request count of every revision it saw traffic for during that second. The first request
   for a revision the activator has not seen in the last second is sent at once, alone, as a
   stat with ``averageConcurrentRequests: 1`` and ``requestCount: 1`` (Knative does the
   same); when that revision is at zero the autoscaler decides at once (the "poke"), which
   is what makes a cold start fast. The autoscaler answers ``202`` with an empty body, or
   ``400`` with a sentence when the body is not a batch.

   Both kinds of stat may also carry, for the same second, the responses that ended in it:
   ``responses`` (counts by status class, ``{"2xx": n, "5xx": m}``) and ``latencyCounts``
   (their total time in ms, one count per bucket of :data:`LATENCY_BUCKETS_MS` and a last
   one for ``+Inf``). The activator counts only the requests it answered itself (never
   forwarded to a pod), so no response is counted twice. A stat without them (an older
   reporter) reads as no responses.

3. Autoscaler -> ingress: whether the activator must stay in a revision's data path is
   published on the PodAutoscaler status as the condition :data:`ACTIVATOR_IN_PATH_CONDITION`
   (``True``: route the revision through the activator; ``False``: route straight to its
   pods). The reason says why (see ``MODE_REASONS``). :func:`activator_in_path` reads it from
   a PodAutoscaler status object; a PodAutoscaler without the condition yet is routed
   through the activator, the safe default (Knative starts an SKS in proxy mode too).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

STATS_PUSH_PATH: Final = "/stats"

# Knative's defaultLatencyDistribution, in milliseconds: the bounds of every latency histogram.
LATENCY_BUCKETS_MS: Final = (
    5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0,
    500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0, 100000.0,
)
LATENCY_COUNTS_LENGTH: Final = len(LATENCY_BUCKETS_MS) + 1  # the finite buckets and +Inf
RESPONSE_CLASSES: Final = ("2xx", "3xx", "4xx", "5xx")


def response_class(code: int) -> str:
    """``"5xx"`` for 503: Knative's ``response_code_class``."""
    return f"{code // 100}xx"
HEALTH_PATH: Final = "/healthz"

# --- PodAutoscaler status: the routing decision -------------------------------------------
ACTIVATOR_IN_PATH_CONDITION: Final = "ActivatorInPath"
REASON_SCALED_TO_ZERO: Final = "ScaledToZero"  # True: no pods wanted, requests wait in the activator
REASON_BURST_CAPACITY_SHORT: Final = "InsufficientBurstCapacity"  # True: EBC < 0
REASON_ALWAYS_IN_PATH: Final = "TargetBurstCapacityUnlimited"  # True: target-burst-capacity -1
REASON_SCALE_UNKNOWN: Final = "ScaleUnknown"  # True: no scale decision yet
REASON_BURST_CAPACITY_AVAILABLE: Final = "BurstCapacityAvailable"  # False: pods take traffic directly
MODE_REASONS: Final = frozenset(
    {
        REASON_SCALED_TO_ZERO,
        REASON_BURST_CAPACITY_SHORT,
        REASON_ALWAYS_IN_PATH,
        REASON_SCALE_UNKNOWN,
        REASON_BURST_CAPACITY_AVAILABLE,
    }
)


class WireError(ValueError):
    """A message that does not follow the format; the text says which field and why."""


def _number(obj: Mapping[str, Any], key: str, *, where: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if value is None:
        raise WireError(f"{where}.{key} is missing; expected a number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WireError(f"{where}.{key} is {value!r}; expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise WireError(f"{where}.{key} is {value!r}; expected a finite number")
    return number


def _text(obj: Mapping[str, Any], key: str, *, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{where}.{key} is {value!r}; expected a non-empty string")
    return value


@dataclass(frozen=True, slots=True)
class Stat:
    """One reporter's view of a revision over the last whole second (Knative's Stat)."""

    pod_name: str
    average_concurrent_requests: float = 0.0
    average_proxied_concurrent_requests: float = 0.0
    request_count: float = 0.0
    proxied_request_count: float = 0.0
    process_uptime: float = 0.0
    timestamp: float = 0.0
    # responses that ended in the second, by status class, and their latency histogram
    responses: Mapping[str, float] = field(default_factory=dict)
    latency_counts: tuple[float, ...] = ()  # empty, or LATENCY_COUNTS_LENGTH counts

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "podName": self.pod_name,
            "averageConcurrentRequests": self.average_concurrent_requests,
            "averageProxiedConcurrentRequests": self.average_proxied_concurrent_requests,
            "requestCount": self.request_count,
            "proxiedRequestCount": self.proxied_request_count,
            "processUptime": self.process_uptime,
            "timestamp": self.timestamp,
        }
        if self.responses:
            body["responses"] = dict(self.responses)
        if self.latency_counts:
            body["latencyCounts"] = list(self.latency_counts)
        return body

    @classmethod
    def from_json(cls, obj: object, *, where: str = "stat") -> Stat:
        if not isinstance(obj, Mapping):
            raise WireError(f"{where} is {type(obj).__name__}; expected a JSON object")
        return cls(
            pod_name=str(obj.get("podName", "")),
            average_concurrent_requests=_number(obj, "averageConcurrentRequests", where=where),
            average_proxied_concurrent_requests=_number(
                obj, "averageProxiedConcurrentRequests", where=where, default=0.0
            ),
            request_count=_number(obj, "requestCount", where=where, default=0.0),
            proxied_request_count=_number(obj, "proxiedRequestCount", where=where, default=0.0),
            process_uptime=_number(obj, "processUptime", where=where, default=0.0),
            timestamp=_number(obj, "timestamp", where=where, default=0.0),
            responses=_responses(obj.get("responses"), where=f"{where}.responses"),
            latency_counts=_latency_counts(obj.get("latencyCounts"), where=f"{where}.latencyCounts"),
        )


def _responses(value: object, *, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WireError(f"{where} is {type(value).__name__}; expected a JSON object of counts by class")
    counts: dict[str, float] = {}
    for name in value:
        if not isinstance(name, str) or len(name) != 3 or not name.endswith("xx") or not name[0].isdigit():
            raise WireError(f"{where} has the key {name!r}; expected a status class such as \"5xx\"")
        count = _number(value, name, where=where)
        if count < 0:
            raise WireError(f"{where}.{name} is {count!r}; expected a count, 0 or more")
        counts[name] = count
    return counts


def _latency_counts(value: object, *, where: str) -> tuple[float, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) != LATENCY_COUNTS_LENGTH:
        raise WireError(
            f"{where} must be a list of {LATENCY_COUNTS_LENGTH} counts, one per latency bucket and +Inf"
        )
    counts = []
    for index, count in enumerate(value):
        if isinstance(count, bool) or not isinstance(count, (int, float)) or not 0 <= count < math.inf:
            raise WireError(f"{where}[{index}] is {count!r}; expected a count, 0 or more")
        counts.append(float(count))
    return tuple(counts)


def encode_stat(stat: Stat) -> bytes:
    """The body of a queue-proxy ``/stats`` answer."""
    return json.dumps(stat.to_json()).encode()


def decode_stat(body: bytes | str) -> Stat:
    """Parse the body of a queue-proxy ``/stats`` answer."""
    try:
        obj = json.loads(body)
    except ValueError as error:
        raise WireError(f"stats body is not JSON: {error}") from None
    return Stat.from_json(obj)


@dataclass(frozen=True, slots=True)
class RevisionStat:
    """A stat about one revision, as the activator pushes it."""

    namespace: str
    revision: str
    stat: Stat


def encode_stat_batch(messages: Sequence[RevisionStat]) -> bytes:
    batch = [
        {"namespace": message.namespace, "revision": message.revision, "stat": message.stat.to_json()}
        for message in messages
    ]
    return json.dumps({"stats": batch}, separators=(",", ":")).encode()


def decode_stat_batch(body: bytes | str) -> list[RevisionStat]:
    try:
        obj = json.loads(body)
    except ValueError as error:
        raise WireError(f"stats batch is not JSON: {error}") from None
    if not isinstance(obj, Mapping) or not isinstance(obj.get("stats"), list):
        raise WireError('stats batch must be a JSON object with a "stats" list')
    messages = []
    for index, entry in enumerate(obj["stats"]):
        where = f"stats[{index}]"
        if not isinstance(entry, Mapping):
            raise WireError(f"{where} is {type(entry).__name__}; expected a JSON object")
        messages.append(
            RevisionStat(
                namespace=_text(entry, "namespace", where=where),
                revision=_text(entry, "revision", where=where),
                stat=Stat.from_json(entry.get("stat"), where=f"{where}.stat"),
            )
        )
    return messages


def activator_in_path(status: Mapping[str, Any] | None) -> bool:
    """Whether a PodAutoscaler ``status`` asks for the activator in the revision's path."""
    for condition in (status or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == ACTIVATOR_IN_PATH_CONDITION:
            return condition.get("status") != "False"
    return True
