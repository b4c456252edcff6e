"""``config-gc``: how many and which non-active Revisions the garbage collector keeps.

Knative's keys: ``retain-since-create-time`` (48h), ``retain-since-last-active-time`` (15h),
``min-non-active-revisions`` (20), ``max-non-active-revisions`` (1000). Durations and the max
accept ``disabled``, stored as ``None``. Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from serving.config.parsers import Reader, parse_go_duration

NAME: Final = "config-gc"


@dataclasses.dataclass(frozen=True)
class GCConfig:
    retain_since_create_time_seconds: float | None = 48 * 3600.0
    retain_since_last_active_time_seconds: float | None = 15 * 3600.0
    min_non_active_revisions: int = 20
    max_non_active_revisions: int | None = 1000

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> GCConfig:
        read = Reader(NAME, data)

        def duration_or_disabled(key: str, default: float | None) -> float | None:
            raw = read.string("", key)
            if not raw:
                return default
            if raw.lower() == "disabled":
                return None
            try:
                value = parse_go_duration(raw)
            except ValueError:
                raise read.error(key, f"{raw!r} is not a duration (for example 48h) or \"disabled\"") from None
            if value < 0:
                raise read.error(key, "must be non-negative")
            return value

        create = duration_or_disabled("retain-since-create-time", cls.retain_since_create_time_seconds)
        active = duration_or_disabled("retain-since-last-active-time", cls.retain_since_last_active_time_seconds)
        minimum = read.integer(20, "min-non-active-revisions")
        raw_max = read.string("", "max-non-active-revisions")
        maximum: int | None = 1000
        if raw_max:
            if raw_max.lower() == "disabled":
                maximum = None
            elif raw_max.isdigit():
                maximum = int(raw_max)
            else:
                raise read.error("max-non-active-revisions", f"{raw_max!r} is not a non-negative integer or \"disabled\"")
        if minimum < 0:
            raise read.error("min-non-active-revisions", f"must be non-negative, was: {minimum}")
        if maximum is not None and minimum > maximum:
            raise read.error(
                "min-non-active-revisions", f"({minimum}) must be <= max-non-active-revisions({maximum})"
            )
        return cls(create, active, minimum, maximum)
