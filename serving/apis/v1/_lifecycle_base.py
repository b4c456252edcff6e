"""The mixin every kind's status lifecycle builds on: its ConditionSet and readiness reads.

Pure; no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from serving.apis.conditions import READY, Condition, ConditionManager, ConditionSet, Timestamp

if TYPE_CHECKING:
    from serving.apis.conditions import Status

Now = Timestamp | None


class StatusLifecycle:
    """Mixed into a kind's status model (which is a ``conditions.Status``)."""

    CONDITION_SET: ClassVar[ConditionSet] = ConditionSet()

    def manage(self, now: Now = None) -> ConditionManager:
        status: Status = self  # type: ignore[assignment]
        return self.CONDITION_SET.manage(status, now=now)

    def _condition(self, condition_type: str) -> Condition | None:
        return self.manage().get(condition_type)

    def initialize_conditions(self, *, now: Now = None) -> None:
        self.manage(now).initialize()

    def is_ready(self) -> bool:
        condition = self._condition(READY)
        return condition is not None and condition.is_true()

    def is_failed(self) -> bool:
        condition = self._condition(READY)
        return condition is not None and condition.is_false()
