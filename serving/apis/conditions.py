"""Conditions and the ``ConditionSet`` that derives a happy condition from its dependents.

This follows knative.dev/pkg's ``apis.ConditionSet`` (a "living" set): ``Ready`` is True only
when every dependent condition is True; a False dependent beats an Unknown one; a dependent
that has not been reported yet counts as Unknown. Conditions outside the set (for example a
Revision's ``Active``) are kept with severity ``Info`` and never affect ``Ready``.

``lastTransitionTime`` changes only when a condition's status changes. The verbs take an
optional keyword ``now``: when it is given, a changed condition gets that time; when it is not,
a changed condition's time is left empty and ``stamp_transition_times(status, now)`` (called by
the reconcile loop, which owns the clock) fills it in. ``now`` is a datetime, an RFC 3339 text
or epoch seconds (the autoscaler's clock). No clock is read here.
"""

from __future__ import annotations

import datetime
from typing import Final, Literal

from serving.apis.meta import KubeModel

ConditionStatus = Literal["True", "False", "Unknown"]
TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"

# Knative's severities: Error (terminal, the JSON omits it as ""), Warning, Info.
SEVERITY_ERROR: Final = ""
SEVERITY_WARNING: Final = "Warning"
SEVERITY_INFO: Final = "Info"

READY: Final = "Ready"
SUCCEEDED: Final = "Succeeded"


Timestamp = datetime.datetime | str | float  # a datetime, RFC 3339 text or epoch seconds


def format_time(now: Timestamp) -> str:
    """RFC 3339 with second precision in UTC, as Kubernetes writes ``metav1.Time``."""
    if isinstance(now, str):
        return now
    if isinstance(now, (int, float)):
        now = datetime.datetime.fromtimestamp(int(now), tz=datetime.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 time (``metav1.Time``); None when there is none or it does not parse."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class Condition(KubeModel):
    type: str
    status: ConditionStatus = "Unknown"
    severity: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None

    def is_true(self) -> bool:
        return self.status == TRUE

    def is_false(self) -> bool:
        return self.status == FALSE

    def is_unknown(self) -> bool:
        return self.status == UNKNOWN

    def same_as(self, other: Condition) -> bool:
        """Equal in everything but the transition time."""
        return (
            self.status == other.status
            and (self.severity or "") == (other.severity or "")
            and (self.reason or "") == (other.reason or "")
            and (self.message or "") == (other.message or "")
        )


class Status(KubeModel):
    """duckv1.Status: the fields every Knative status has."""

    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    annotations: dict[str, str] | None = None

    def get_condition(self, condition_type: str) -> Condition | None:
        for condition in self.conditions or []:
            if condition.type == condition_type:
                return condition
        return None


def stamp_transition_times(status: Status, now: Timestamp) -> None:
    """Give every condition that changed without a time (``lastTransitionTime`` empty) ``now``."""
    stamp = format_time(now)
    for condition in status.conditions or []:
        if condition.last_transition_time is None:
            condition.last_transition_time = stamp


class ConditionSet:
    """A happy condition (``Ready``) and the dependent conditions it is derived from."""

    def __init__(self, *dependents: str, happy: str = READY) -> None:
        self.happy = happy
        self.dependents: tuple[str, ...] = tuple(d for d in dependents if d != happy)

    def manage(self, status: Status, *, now: Timestamp | None = None) -> ConditionManager:
        return ConditionManager(self, status, now=now)

    def is_terminal(self, condition_type: str) -> bool:
        return condition_type == self.happy or condition_type in self.dependents


class ConditionManager:
    """Verbs over one status's conditions, bound to a ``ConditionSet``."""

    def __init__(self, condition_set: ConditionSet, status: Status, *, now: Timestamp | None) -> None:
        self.set = condition_set
        self.status = status
        self.now = None if now is None else format_time(now)

    # --- reading ---------------------------------------------------------------------------
    def get(self, condition_type: str) -> Condition | None:
        return self.status.get_condition(condition_type)

    def happy(self) -> Condition | None:
        return self.get(self.set.happy)

    # --- writing ---------------------------------------------------------------------------
    def _severity(self, condition_type: str) -> str:
        return SEVERITY_ERROR if self.set.is_terminal(condition_type) else SEVERITY_INFO

    def set_condition(self, new: Condition) -> None:
        """Put ``new`` in place of the condition of its type; keep the old time unless the status changed."""
        conditions = [c for c in (self.status.conditions or []) if c.type != new.type]
        old = self.get(new.type)
        if new.severity == SEVERITY_ERROR:
            new.severity = None  # Knative omits the Error severity ("") from the JSON
        if old is not None:
            if old.same_as(new):
                return
            if old.status == new.status:
                new.last_transition_time = old.last_transition_time
            else:
                new.last_transition_time = self.now
        else:
            new.last_transition_time = self.now
        conditions.append(new)
        conditions.sort(key=lambda c: c.type)
        self.status.conditions = conditions

    def _make(self, condition_type: str, status: ConditionStatus, reason: str | None, message: str | None) -> Condition:
        return Condition(
            type=condition_type,
            status=status,
            severity=self._severity(condition_type),
            reason=reason or None,
            message=message or None,
        )

    def initialize(self) -> None:
        """Add any missing happy/dependent condition as Unknown (True if the happy one is True)."""
        happy = self.happy()
        if happy is None:
            self.set_condition(self._make(self.set.happy, UNKNOWN, None, None))
            happy = self.happy()
        assert happy is not None
        initial: ConditionStatus = TRUE if happy.is_true() else UNKNOWN
        for dependent in self.set.dependents:
            if self.get(dependent) is None:
                self.set_condition(self._make(dependent, initial, None, None))

    def mark_true(self, condition_type: str, reason: str | None = None, message: str | None = None) -> None:
        self.set_condition(self._make(condition_type, TRUE, reason, message))
        self._recompute_happiness(condition_type)

    def mark_unknown(self, condition_type: str, reason: str | None = None, message: str | None = None) -> None:
        self.set_condition(self._make(condition_type, UNKNOWN, reason, message))
        if condition_type not in self.set.dependents:
            return
        # False beats Unknown: a False dependent keeps the happy condition False.
        for dependent in self.set.dependents:
            condition = self.get(dependent)
            if condition is not None and condition.is_false():
                happy = self.happy()
                if happy is None or not happy.is_false():
                    self.set_condition(self._make(self.set.happy, FALSE, condition.reason, condition.message))
                return
        self.set_condition(self._make(self.set.happy, UNKNOWN, reason, message))

    def mark_false(self, condition_type: str, reason: str | None = None, message: str | None = None) -> None:
        self.set_condition(self._make(condition_type, FALSE, reason, message))
        if condition_type in self.set.dependents:
            self.set_condition(self._make(self.set.happy, FALSE, reason, message))

    def mark(self, condition_type: str, status: str | None, reason: str | None, message: str | None) -> None:
        """Mark ``condition_type`` as another condition says (True keeps no reason; anything but
        True or False is Unknown): how a parent folds a child's condition into its own."""
        if status == TRUE:
            self.mark_true(condition_type)
        elif status == FALSE:
            self.mark_false(condition_type, reason, message)
        else:
            self.mark_unknown(condition_type, reason, message)

    def clear(self, condition_type: str) -> None:
        """Remove a non-terminal condition."""
        if self.set.is_terminal(condition_type):
            raise ValueError(f"clearing terminal condition {condition_type!r} is not supported")
        self.status.conditions = [c for c in (self.status.conditions or []) if c.type != condition_type] or None

    def _recompute_happiness(self, changed: str) -> None:
        unhappy = self._find_unhappy_dependent()
        if unhappy is not None:
            self.set_condition(self._make(self.set.happy, unhappy.status, unhappy.reason, unhappy.message))
        elif changed != self.set.happy:
            self.set_condition(self._make(self.set.happy, TRUE, None, None))

    def _find_unhappy_dependent(self) -> Condition | None:
        if not self.set.dependents:
            return None
        present = [c for c in (self.status.conditions or []) if c.type in self.set.dependents]
        for condition in present:
            if condition.is_false():
                return condition
        for condition in present:
            if condition.is_unknown():
                return condition
        if len(present) < len(self.set.dependents):
            return Condition(type="", status=UNKNOWN)
        return None


