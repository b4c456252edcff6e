"""Traffic resolution: a Route's spec.traffic against the Configurations and Revisions that exist.

``resolve_traffic`` turns every target into a concrete revision (a ``configurationName``
target becomes its Configuration's ``latestReadyRevisionName``) and reports the first bad
target the way Knative does: a missing Revision or Configuration is noted and processing
continues (so every reference is still known for tracking); a target that exists but is not
ready (or failed) stops resolution, and so does a Revision of another Service named in the
traffic of a Service's Route (``service``; ``RevisionNotOwned``). ``group_by_tag`` builds the routing groups: the default
group holds every target, each tag its own target at 100%; targets naming the same revision
within a group are merged. Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from knserve.networking import SERVICE_LABEL
from serving.apis.v1 import Configuration, Revision, TrafficTarget

DEFAULT_GROUP = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """One traffic target, pinned to a revision. ``configuration`` is set for
    configuration targets (they follow its latest ready revision)."""

    revision: str
    percent: int
    tag: str = ""
    configuration: str = ""
    latest_revision: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class TrafficError:
    """Why the traffic could not be assigned. ``kind`` is "Revision" or "Configuration";
    ``problem`` is "missing", "not-ready", "failed" or "not-owned" (``owner`` names the
    Service the Revision belongs to)."""

    kind: str
    name: str
    problem: str
    owner: str = ""


@dataclasses.dataclass(frozen=True)
class Resolution:
    targets: tuple[ResolvedTarget, ...]
    error: TrafficError | None
    configurations: frozenset[str]  # every Configuration the spec names (for tracking)
    revisions: frozenset[str]  # every Revision the spec names or resolves to

    @property
    def ok(self) -> bool:
        return self.error is None


def resolve_traffic(
    traffic: Sequence[TrafficTarget],
    *,
    configurations: Mapping[str, Configuration],
    revisions: Mapping[str, Revision],
    service: str = "",
) -> Resolution:
    resolved: list[ResolvedTarget] = []
    deferred: TrafficError | None = None
    named_configurations: set[str] = set()
    named_revisions: set[str] = set()
    for target in traffic:
        percent = target.percent or 0
        tag = target.tag or ""
        if target.revision_name:
            name = target.revision_name
            named_revisions.add(name)
            revision = revisions.get(name)
            if revision is None:
                deferred = deferred or TrafficError("Revision", name, "missing")
                continue
            owner = revision.metadata.label(SERVICE_LABEL) or ""
            if service and owner and owner != service:
                return Resolution(tuple(resolved), TrafficError("Revision", name, "not-owned", owner),
                                  frozenset(named_configurations), frozenset(named_revisions))
            if not revision.is_ready():
                problem = "failed" if revision.is_failed() else "not-ready"
                return Resolution(tuple(resolved), TrafficError("Revision", name, problem),
                                  frozenset(named_configurations), frozenset(named_revisions))
            resolved.append(ResolvedTarget(name, percent, tag, "", bool(target.latest_revision)))
        elif target.configuration_name:
            name = target.configuration_name
            named_configurations.add(name)
            configuration = configurations.get(name)
            if configuration is None:
                deferred = deferred or TrafficError("Configuration", name, "missing")
                continue
            latest_ready = configuration.status.latest_ready_revision_name
            if not latest_ready:
                problem = "failed" if configuration.is_failed() else "not-ready"
                return Resolution(tuple(resolved), TrafficError("Configuration", name, problem),
                                  frozenset(named_configurations), frozenset(named_revisions))
            named_revisions.add(latest_ready)
            if latest_ready not in revisions:
                deferred = deferred or TrafficError("Revision", latest_ready, "missing")
                continue
            resolved.append(ResolvedTarget(latest_ready, percent, tag, name, True))
    return Resolution(tuple(resolved), deferred, frozenset(named_configurations), frozenset(named_revisions))


def merge_by_revision(targets: Sequence[ResolvedTarget]) -> tuple[tuple[str, int], ...]:
    """(revision, percent) in first-seen order, percents of the same revision added."""
    totals: dict[str, int] = {}
    for target in targets:
        totals[target.revision] = totals.get(target.revision, 0) + target.percent
    return tuple(totals.items())


def group_by_tag(targets: Sequence[ResolvedTarget]) -> dict[str, tuple[tuple[str, int], ...]]:
    """Routing groups: ``""`` -> every target merged; each tag -> its revision at 100%."""
    groups: dict[str, tuple[tuple[str, int], ...]] = {DEFAULT_GROUP: merge_by_revision(targets)}
    for target in targets:
        if target.tag:
            groups[target.tag] = ((target.revision, 100),)
    return groups


def status_traffic(targets: Sequence[ResolvedTarget], tag_urls: Mapping[str, str]) -> list[TrafficTarget]:
    """What ``status.traffic`` shows: one entry per target, pinned, with a URL per tag."""
    out = []
    for target in targets:
        out.append(TrafficTarget(
            tag=target.tag or None,
            revision_name=target.revision,
            configuration_name=None,
            latest_revision=target.latest_revision,
            percent=target.percent,
            url=tag_urls.get(target.tag) if target.tag else None,
        ))
    return out


def targets_from_status(traffic: Sequence[TrafficTarget] | None) -> tuple[ResolvedTarget, ...]:
    """The assignment in effect, read back from ``status.traffic`` (used while the spec cannot
    be assigned: the previous traffic stays in effect, and survives a controller restart)."""
    return tuple(
        ResolvedTarget(t.revision_name or "", t.percent or 0, t.tag or "", "", bool(t.latest_revision))
        for t in traffic or []
        if t.revision_name
    )
