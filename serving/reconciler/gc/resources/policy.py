"""Which non-active Revisions of a Configuration to delete, per config-gc (Knative's GC v2).

A Revision is kept when it is the Configuration's latest ready one, is annotated
``serving.knative.dev/no-gc: "true"``, or is not in the ``reserve`` routing state. Of the
rest (least recently active first), while more than ``min-non-active-revisions`` would
remain, a Revision created longer ago than ``retain-since-create-time`` *and* last active
longer ago than ``retain-since-last-active-time`` is stale and goes; then, of those kept,
the least recently active past ``max-non-active-revisions`` go. Nothing is collected while
the Configuration has no more than ``min`` Revisions in all. ``decide`` also says when to look again (the next moment a
kept Revision turns stale). Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Final

from knserve.clock import parse_time
from knserve.networking import ROUTING_STATE_LABEL, ROUTING_STATE_MODIFIED_ANNOTATION
from serving.apis.v1 import Revision
from serving.config.gc import GCConfig
from serving.reconciler.configuration.resources.revision import ROUTING_STATE_RESERVE

NO_GC_ANNOTATION: Final = "serving.knative.dev/no-gc"
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Decision:
    delete: tuple[str, ...]
    recheck_after: float | None  # seconds


def created_at(revision: Revision) -> datetime.datetime:
    return parse_time(revision.metadata.creation_timestamp) or _EPOCH


def last_active_at(revision: Revision) -> datetime.datetime:
    return parse_time(revision.metadata.annotation(ROUTING_STATE_MODIFIED_ANNOTATION)) or created_at(revision)


def is_active(revision: Revision, latest_ready: str | None) -> bool:
    if revision.name == latest_ready:
        return True
    if (revision.metadata.annotation(NO_GC_ANNOTATION) or "").lower() == "true":
        return True
    return revision.metadata.label(ROUTING_STATE_LABEL) != ROUTING_STATE_RESERVE


def stale_at(revision: Revision, config: GCConfig) -> datetime.datetime | None:
    """When the revision becomes stale (None: never, both time checks are disabled)."""
    since_create, since_active = config.retain_since_create_time_seconds, config.retain_since_last_active_time_seconds
    if since_create is None and since_active is None:
        return None
    moments = [_EPOCH]
    if since_create is not None:
        moments.append(created_at(revision) + datetime.timedelta(seconds=since_create))
    if since_active is not None:
        moments.append(last_active_at(revision) + datetime.timedelta(seconds=since_active))
    return max(moments)


def decide(
    revisions: Sequence[Revision], *, latest_ready: str | None, config: GCConfig, now: datetime.datetime
) -> Decision:
    minimum, maximum = config.min_non_active_revisions, config.max_non_active_revisions
    if (maximum is None and config.retain_since_create_time_seconds is None
            and config.retain_since_last_active_time_seconds is None):
        return Decision((), None)
    if len(revisions) <= minimum:
        return Decision((), None)
    candidates = sorted((r for r in revisions if not is_active(r, latest_ready)), key=last_active_at)
    if len(candidates) <= minimum:
        return Decision((), None)
    most_deletions = len(candidates) - minimum
    delete: list[str] = []
    kept: list[Revision] = []  # oldest first
    recheck: datetime.datetime | None = None
    finished = True
    for revision in candidates:
        if len(delete) >= most_deletions:
            finished = False
            break
        when = stale_at(revision, config)
        if when is not None and when <= now:
            delete.append(revision.name)
        else:
            kept.append(revision)
            if when is not None and (recheck is None or when < recheck):
                recheck = when
    if finished and maximum is not None and len(kept) > maximum:
        youngest_first = list(reversed(kept))
        delete.extend(revision.name for revision in youngest_first[maximum:])
    return Decision(tuple(delete), None if recheck is None else max(1.0, (recheck - now).total_seconds()))
