"""A Service's canary policy: progressive delivery switched on and tuned by annotations on the
Service's own metadata (Knative's API stays untouched).

    knserve.dev/canary-steps            the switch: shares in percent the new Revision gets
                                        before 100, strictly increasing, 1..99 (``5,25,50``)
    knserve.dev/canary-interval         how long each step is analysed (Go duration, 1s..1h;
                                        default 30s)
    knserve.dev/canary-max-error-rate   the largest share of 5xx responses a step may see
                                        (a percentage, ``1%``; default 1%)
    knserve.dev/canary-max-latency-p99  the largest p99 latency a step may see (Go duration;
                                        default 500ms)
    knserve.dev/canary-min-requests     requests a step needs before it is judged (default 50);
                                        a step that has fewer waits, up to
                                        ``MIN_REQUESTS_WAIT_INTERVALS`` intervals, then fails

``parse_canary_policy`` returns None when the switch is off, the policy otherwise, and raises
``CanaryPolicyError`` naming every bad annotation and the form it accepts (the webhook turns
that into the refusal a user sees at apply). Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final

from serving.config.parsers import parse_go_duration

STEPS_ANNOTATION: Final = "knserve.dev/canary-steps"
INTERVAL_ANNOTATION: Final = "knserve.dev/canary-interval"
MAX_ERROR_RATE_ANNOTATION: Final = "knserve.dev/canary-max-error-rate"
MAX_LATENCY_P99_ANNOTATION: Final = "knserve.dev/canary-max-latency-p99"
MIN_REQUESTS_ANNOTATION: Final = "knserve.dev/canary-min-requests"
CANARY_ANNOTATIONS: Final = (
    STEPS_ANNOTATION, INTERVAL_ANNOTATION, MAX_ERROR_RATE_ANNOTATION, MAX_LATENCY_P99_ANNOTATION,
    MIN_REQUESTS_ANNOTATION,
)

DEFAULT_INTERVAL_SECONDS: Final = 30.0
DEFAULT_MAX_ERROR_RATE: Final = 0.01
DEFAULT_MAX_LATENCY_P99_SECONDS: Final = 0.5
DEFAULT_MIN_REQUESTS: Final = 50
MIN_INTERVAL_SECONDS: Final = 1.0
MAX_INTERVAL_SECONDS: Final = 3600.0
MAX_MIN_REQUESTS: Final = 1_000_000
# A step with too few requests keeps collecting for this many intervals before it fails.
MIN_REQUESTS_WAIT_INTERVALS: Final = 10

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*%\s*$")


@dataclasses.dataclass(frozen=True, slots=True)
class CanaryPolicy:
    steps: tuple[int, ...]
    interval: float = DEFAULT_INTERVAL_SECONDS
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE  # a fraction, 0.01 for 1%
    max_latency_p99: float = DEFAULT_MAX_LATENCY_P99_SECONDS  # seconds
    min_requests: int = DEFAULT_MIN_REQUESTS

    @property
    def wait_limit(self) -> float:
        """Seconds a step may wait for ``min_requests`` before it fails."""
        return self.interval * MIN_REQUESTS_WAIT_INTERVALS


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyIssue:
    annotation: str
    message: str


class CanaryPolicyError(ValueError):
    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{issue.annotation}: {issue.message}" for issue in issues))


def canary_enabled(annotations: Mapping[str, str] | None) -> bool:
    return bool((annotations or {}).get(STEPS_ANNOTATION, "").strip())


def _steps(text: str) -> tuple[int, ...]:
    form = 'expected shares in percent before 100, comma-separated and increasing, each 1..99, like "5,25,50"'
    parts = [part.strip() for part in text.split(",")]
    if not parts or any(not part.isdigit() for part in parts):
        raise ValueError(f"invalid value {text!r}: {form}")
    steps = tuple(int(part) for part in parts)
    if any(not 1 <= step <= 99 for step in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"invalid value {text!r}: {form}")
    return steps


def _duration(text: str, *, low: float, high: float | None) -> float:
    bounds = f"between {_format_seconds(low)} and {_format_seconds(high)}" if high is not None else "above 0"
    form = f'expected a duration {bounds}, like "500ms", "30s" or "2m"'
    try:
        seconds = parse_go_duration(text)
    except ValueError:
        raise ValueError(f"invalid value {text!r}: {form}") from None
    if seconds < low or (high is not None and seconds > high) or seconds <= 0:
        raise ValueError(f"invalid value {text!r}: {form}")
    return seconds


def _format_seconds(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _rate(text: str) -> float:
    match = _PERCENT.match(text)
    if match is None or float(match.group(1)) > 100:
        raise ValueError(f'invalid value {text!r}: expected a percentage from 0% to 100%, like "1%" or "0.5%"')
    return float(match.group(1)) / 100.0


def _count(text: str) -> int:
    stripped = text.strip()
    if not stripped.isdigit() or not 1 <= int(stripped) <= MAX_MIN_REQUESTS:
        raise ValueError(f"invalid value {text!r}: expected a whole number of requests from 1 to {MAX_MIN_REQUESTS}")
    return int(stripped)


def parse_canary_policy(annotations: Mapping[str, str] | None) -> CanaryPolicy | None:
    """The policy the annotations ask for; None when ``knserve.dev/canary-steps`` is absent or empty."""
    annotations = annotations or {}
    issues: list[PolicyIssue] = []
    values: dict[str, object] = {}
    readers = (
        (INTERVAL_ANNOTATION, "interval",
         lambda text: _duration(text, low=MIN_INTERVAL_SECONDS, high=MAX_INTERVAL_SECONDS)),
        (MAX_ERROR_RATE_ANNOTATION, "max_error_rate", _rate),
        (MAX_LATENCY_P99_ANNOTATION, "max_latency_p99", lambda text: _duration(text, low=0.0, high=None)),
        (MIN_REQUESTS_ANNOTATION, "min_requests", _count),
    )
    steps_text = annotations.get(STEPS_ANNOTATION)
    steps: tuple[int, ...] = ()
    if steps_text is not None and steps_text.strip():
        try:
            steps = _steps(steps_text)
        except ValueError as error:
            issues.append(PolicyIssue(STEPS_ANNOTATION, str(error)))
    for annotation, field, read in readers:
        text = annotations.get(annotation)
        if text is None:
            continue
        try:
            values[field] = read(text)
        except ValueError as error:
            issues.append(PolicyIssue(annotation, str(error)))
    if issues:
        raise CanaryPolicyError(issues)
    if not steps:
        return None
    return CanaryPolicy(steps=steps, **values)  # type: ignore[arg-type]
