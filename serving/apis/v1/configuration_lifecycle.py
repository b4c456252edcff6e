"""Configuration condition verbs and reasons (after knative.dev/serving configuration_lifecycle.go).

A Configuration has only ``Ready``: True once the latest created Revision is the latest ready
one. Pure; no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from serving.apis.conditions import READY, ConditionSet
from serving.apis.v1._lifecycle_base import Now, StatusLifecycle

CONDITION_READY: Final = READY
REASON_REVISION_FAILED: Final = "RevisionFailed"
REASON_REVISION_DELETED: Final = "RevisionDeleted"

CONFIGURATION_CONDITION_SET: Final = ConditionSet()


class ConfigurationStatusLifecycle(StatusLifecycle):
    CONDITION_SET: ClassVar[ConditionSet] = CONFIGURATION_CONDITION_SET

    if TYPE_CHECKING:  # fields of the status model this is mixed into
        latest_ready_revision_name: str | None
        latest_created_revision_name: str | None

    def set_latest_created_revision_name(self, name: str, *, now: Now = None) -> None:
        self.latest_created_revision_name = name
        if self.latest_ready_revision_name != name:
            self.manage(now).mark_unknown(CONDITION_READY)

    def set_latest_ready_revision_name(self, name: str, *, now: Now = None) -> None:
        self.latest_ready_revision_name = name
        if self.latest_ready_revision_name == self.latest_created_revision_name:
            self.manage(now).mark_true(CONDITION_READY)

    def mark_latest_created_failed(self, name: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_READY, REASON_REVISION_FAILED, f'Revision "{name}" failed with message: {message}.'
        )

    def mark_revision_creation_failed(self, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_READY, REASON_REVISION_FAILED, f"Revision creation failed with message: {message}."
        )

    def mark_latest_ready_deleted(self, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_READY, REASON_REVISION_DELETED, f'Revision "{self.latest_ready_revision_name or ""}" was deleted.'
        )
