"""Service condition verbs and reasons (after knative.dev/serving service_lifecycle.go).

Ready is derived from ``ConfigurationsReady`` and ``RoutesReady``; the Service mirrors its
Configuration's and Route's status fields. A Service with a canary policy
(``knserve.dev/canary-steps``) also has ``CanaryReady``, and then Ready depends on it too:
Unknown while an analysis runs (``Progressing``), True once the candidate is promoted (or the
analysis was stopped by a person's traffic edit), False when it was rolled back, so
``kubectl get ksvc`` shows the reason. A Service without the policy has no such condition.
Pure; no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from serving.apis.conditions import FALSE, READY, TRUE, ConditionManager, ConditionSet, Status
from serving.apis.v1._lifecycle_base import Now, StatusLifecycle

if TYPE_CHECKING:
    from serving.apis.v1.configuration_types import ConfigurationStatus
    from serving.apis.v1.route_types import RouteStatus

CONDITION_READY: Final = READY
CONDITION_CONFIGURATIONS_READY: Final = "ConfigurationsReady"
CONDITION_ROUTES_READY: Final = "RoutesReady"

CONDITION_CANARY_READY: Final = "CanaryReady"

REASON_NOT_OWNED: Final = "NotOwned"
REASON_OUT_OF_DATE: Final = "OutOfDate"
REASON_REVISION_NAME_TAKEN: Final = "RevisionNameTaken"
REASON_TRAFFIC_NOT_MIGRATED: Final = "TrafficNotMigrated"
MESSAGE_TRAFFIC_NOT_MIGRATED: Final = "Traffic is not yet migrated to the latest revision."

REASON_CANARY_PROGRESSING: Final = "Progressing"
REASON_CANARY_PROMOTED: Final = "Promoted"
REASON_CANARY_ROLLED_BACK: Final = "RolledBack"
REASON_CANARY_STOPPED: Final = "Stopped"

SERVICE_CONDITION_SET: Final = ConditionSet(CONDITION_CONFIGURATIONS_READY, CONDITION_ROUTES_READY)
CANARY_SERVICE_CONDITION_SET: Final = ConditionSet(
    CONDITION_CONFIGURATIONS_READY, CONDITION_ROUTES_READY, CONDITION_CANARY_READY)


class ServiceStatusLifecycle(StatusLifecycle):
    CONDITION_SET: ClassVar[ConditionSet] = SERVICE_CONDITION_SET

    def manage(self, now: Now = None) -> ConditionManager:
        """The Service's conditions; ``CanaryReady``, where present, is one Ready depends on."""
        status: Status = self  # type: ignore[assignment]
        has_canary = status.get_condition(CONDITION_CANARY_READY) is not None
        return (CANARY_SERVICE_CONDITION_SET if has_canary else self.CONDITION_SET).manage(status, now=now)

    def mark_canary(self, status: str, reason: str, message: str, *, now: Now = None) -> None:
        """Set ``CanaryReady`` (which makes it one of Ready's dependents) and fold it into Ready."""
        manager = CANARY_SERVICE_CONDITION_SET.manage(self, now=now)  # type: ignore[arg-type]
        if status == TRUE:  # with its reason: a promotion says what it did
            manager.mark_true(CONDITION_CANARY_READY, reason, message)
        elif status == FALSE:
            manager.mark_false(CONDITION_CANARY_READY, reason, message)
        else:
            manager.mark_unknown(CONDITION_CANARY_READY, reason, message)

    def clear_canary(self) -> None:
        """The policy is gone: no ``CanaryReady``, and Ready follows the other two again."""
        status: Status = self  # type: ignore[assignment]
        if status.get_condition(CONDITION_CANARY_READY) is None:
            return
        status.conditions = [c for c in status.conditions or [] if c.type != CONDITION_CANARY_READY] or None
        manager = SERVICE_CONDITION_SET.manage(status)
        ready = manager.get(CONDITION_ROUTES_READY)
        if ready is not None:
            manager.mark(CONDITION_ROUTES_READY, ready.status, ready.reason, ready.message)

    def mark_configuration_not_owned(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_CONFIGURATIONS_READY, REASON_NOT_OWNED,
            f'There is an existing Configuration "{name}" that we do not own.',
        )

    def mark_route_not_owned(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_ROUTES_READY, REASON_NOT_OWNED, f'There is an existing Route "{name}" that we do not own.'
        )

    def mark_configuration_not_reconciled(self, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(
            CONDITION_CONFIGURATIONS_READY, REASON_OUT_OF_DATE,
            "The Configuration is still working to reflect the latest desired specification.",
        )

    def mark_route_not_reconciled(self, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(
            CONDITION_ROUTES_READY, REASON_OUT_OF_DATE,
            "The Route is still working to reflect the latest desired specification.",
        )

    def mark_revision_name_taken(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_ROUTES_READY, REASON_REVISION_NAME_TAKEN,
            f'The revision name "{name}" is taken by a conflicting Revision, so traffic will not be migrated',
        )

    def mark_route_not_yet_ready(self, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(CONDITION_ROUTES_READY, REASON_TRAFFIC_NOT_MIGRATED, MESSAGE_TRAFFIC_NOT_MIGRATED)

    def propagate_configuration_status(self, configuration_status: ConfigurationStatus, *, now: Now = None) -> None:
        """Copy latestReady/latestCreated and fold the Configuration's Ready into ConfigurationsReady."""
        self.latest_ready_revision_name = configuration_status.latest_ready_revision_name
        self.latest_created_revision_name = configuration_status.latest_created_revision_name
        ready = configuration_status.get_condition(READY)
        if ready is None:
            return
        self.manage(now).mark(CONDITION_CONFIGURATIONS_READY, ready.status, ready.reason, ready.message)

    def propagate_route_status(self, route_status: RouteStatus, *, now: Now = None) -> None:
        """Copy url/address/traffic and fold the Route's Ready into RoutesReady."""
        self.url = route_status.url
        self.address = route_status.address.model_copy(deep=True) if route_status.address else None
        self.traffic = list(route_status.traffic) if route_status.traffic is not None else None
        ready = route_status.get_condition(READY)
        if ready is None:
            return
        self.manage(now).mark(CONDITION_ROUTES_READY, ready.status, ready.reason, ready.message)
