"""A Service's policy for asynchronous calls (the call queue's): read from its annotations,
and the back-off it implies. Shared by the queue, which follows it, and the controller's
webhook, which refuses a Service whose annotations do not make one.

Annotations on the Service's metadata (every one optional):

    knserve.dev/async                  ``always`` (every request is queued) or ``requested``
                                       (only with ``Prefer: respond-async``; the default)
    knserve.dev/async-max-attempts     attempts before a call is dead (default 3, 1..100)
    knserve.dev/async-retry-codes      status codes retried, comma-separated
                                       (default 408,429,500,502,503,504)
    knserve.dev/async-min-backoff      first back-off, a Go duration (default 1s)
    knserve.dev/async-max-backoff      longest back-off (default 5m)
    knserve.dev/async-max-age          a call not done this long after it was accepted is
                                       dead (default 6h)
    knserve.dev/async-concurrency      calls of the Service in flight at once (default 10)

Pure: parsing, validation and arithmetic; the random source is passed in.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

ASYNC_ANNOTATION: Final = "knserve.dev/async"
MAX_ATTEMPTS_ANNOTATION: Final = "knserve.dev/async-max-attempts"
RETRY_CODES_ANNOTATION: Final = "knserve.dev/async-retry-codes"
MIN_BACKOFF_ANNOTATION: Final = "knserve.dev/async-min-backoff"
MAX_BACKOFF_ANNOTATION: Final = "knserve.dev/async-max-backoff"
MAX_AGE_ANNOTATION: Final = "knserve.dev/async-max-age"
CONCURRENCY_ANNOTATION: Final = "knserve.dev/async-concurrency"

ASYNC_ALWAYS: Final = "always"
ASYNC_REQUESTED: Final = "requested"
DEFAULT_RETRY_CODES: Final = frozenset({408, 429, 500, 502, 503, 504})
MAX_ATTEMPTS_LIMIT: Final = 100
CONCURRENCY_LIMIT: Final = 1000

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration (``300ms``, ``1.5s``, ``2h45m``) in seconds; ValueError when it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (write it like 500ms, 10s, 5m or 6h)")
    return total


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    always_async: bool = False
    max_attempts: int = 3
    retry_codes: frozenset[int] = DEFAULT_RETRY_CODES
    min_backoff: float = 1.0
    max_backoff: float = 300.0
    max_age: float = 6 * 3600.0
    concurrency: int = 10

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): exponential from ``min_backoff``,
        capped at ``max_backoff``, the upper half jittered (never below ``min_backoff``)."""
        ceiling = min(self.max_backoff, self.min_backoff * 2.0 ** max(0, attempt - 1))
        return max(self.min_backoff, ceiling / 2 + random() * ceiling / 2)

    def retries(self, status: int | None) -> bool:
        """Whether an attempt that ended with ``status`` (None: no response) is tried again."""
        return status is None or status in self.retry_codes


class Problem(NamedTuple):
    message: str
    annotations: tuple[str, ...]
    """The annotations at fault (field paths under ``metadata.annotations``)."""

    def __str__(self) -> str:
        return f"{self.message}: " + ", ".join(f"metadata.annotations.{key}" for key in self.annotations)


class PolicyError(ValueError):
    """Annotations that do not make a policy; ``issues`` has one per bad value, ``problems``
    the same as sentences (``message: metadata.annotations.<key>``, Knative's way)."""

    def __init__(self, issues: list[Problem]) -> None:
        self.issues = issues
        self.problems = [str(issue) for issue in issues]
        super().__init__(" ".join(self.problems))


def _integer(annotations: Mapping[str, str], key: str, default: int, low: int, high: int,
             problems: list[Problem]) -> int:
    if key not in annotations:
        return default
    text = annotations[key].strip()
    if not re.fullmatch(r"\d+", text) or not low <= int(text) <= high:
        problems.append(Problem(f"expected {low} <= {text or '(empty)'} <= {high}", (key,)))
        return default
    return int(text)


def _duration(annotations: Mapping[str, str], key: str, default: float, problems: list[Problem]) -> float:
    if key not in annotations:
        return default
    try:
        seconds = parse_duration(annotations[key])
    except ValueError as error:
        problems.append(Problem(f"invalid value: {error}", (key,)))
        return default
    if seconds <= 0:
        problems.append(Problem(f"expected a duration above 0, got {annotations[key]!r}", (key,)))
        return default
    return seconds


def _codes(annotations: Mapping[str, str], problems: list[Problem]) -> frozenset[int]:
    if RETRY_CODES_ANNOTATION not in annotations:
        return DEFAULT_RETRY_CODES
    codes: set[int] = set()
    for word in annotations[RETRY_CODES_ANNOTATION].split(","):
        word = word.strip()
        if not re.fullmatch(r"\d{3}", word) or not 100 <= int(word) <= 599:
            problems.append(Problem(f"invalid value: {word or '(empty)'!r} is not an HTTP status code (100-599)",
                                    (RETRY_CODES_ANNOTATION,)))
            continue
        codes.add(int(word))
    return frozenset(codes)


def parse_policy(annotations: Mapping[str, str] | None) -> RetryPolicy:
    """The policy the annotations ask for; :class:`PolicyError` listing every bad value."""
    annotations = annotations or {}
    problems: list[Problem] = []
    mode = annotations.get(ASYNC_ANNOTATION, ASYNC_REQUESTED).strip()
    if mode not in (ASYNC_ALWAYS, ASYNC_REQUESTED):
        problems.append(Problem(f"invalid value: {mode!r}, expected {ASYNC_ALWAYS!r} or {ASYNC_REQUESTED!r}",
                                (ASYNC_ANNOTATION,)))
    defaults = RetryPolicy()
    policy = RetryPolicy(
        always_async=mode == ASYNC_ALWAYS,
        max_attempts=_integer(annotations, MAX_ATTEMPTS_ANNOTATION, defaults.max_attempts, 1, MAX_ATTEMPTS_LIMIT,
                              problems),
        retry_codes=_codes(annotations, problems),
        min_backoff=_duration(annotations, MIN_BACKOFF_ANNOTATION, defaults.min_backoff, problems),
        max_backoff=_duration(annotations, MAX_BACKOFF_ANNOTATION, defaults.max_backoff, problems),
        max_age=_duration(annotations, MAX_AGE_ANNOTATION, defaults.max_age, problems),
        concurrency=_integer(annotations, CONCURRENCY_ANNOTATION, defaults.concurrency, 1, CONCURRENCY_LIMIT,
                             problems),
    )
    if not problems and policy.min_backoff > policy.max_backoff:
        problems.append(Problem(f"{MIN_BACKOFF_ANNOTATION} ({annotations.get(MIN_BACKOFF_ANNOTATION)}) is longer than "
                                f"{MAX_BACKOFF_ANNOTATION} ({annotations.get(MAX_BACKOFF_ANNOTATION, '5m')})",
                                (MIN_BACKOFF_ANNOTATION, MAX_BACKOFF_ANNOTATION)))
    if problems:
        raise PolicyError(problems)
    return policy


def policy_or_default(annotations: Mapping[str, str] | None) -> tuple[RetryPolicy, list[str]]:
    """The policy, or the defaults and the problems when the annotations are bad (the queue
    keeps working for a Service whose annotations slipped past validation)."""
    try:
        return parse_policy(annotations), []
    except PolicyError as error:
        return RetryPolicy(always_async=(annotations or {}).get(ASYNC_ANNOTATION) == ASYNC_ALWAYS), error.problems


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) as seconds from ``now``; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
