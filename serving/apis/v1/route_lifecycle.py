"""Route condition verbs and reasons (after knative.dev/serving route_lifecycle.go).

Ready is derived from ``AllTrafficAssigned`` and ``IngressReady``. Knative also counts
``CertificateProvisioned``; knserve provisions no certificates, so that condition is tracked
(``mark_tls_not_enabled`` sets it True with Knative's reason, as Knative does without TLS)
but is not part of Ready. Pure; no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from serving.apis.conditions import ConditionSet
from serving.apis.v1._lifecycle_base import Now, StatusLifecycle

if TYPE_CHECKING:
    pass

CONDITION_READY: Final = "Ready"
CONDITION_ALL_TRAFFIC_ASSIGNED: Final = "AllTrafficAssigned"
CONDITION_INGRESS_READY: Final = "IngressReady"
CONDITION_CERTIFICATE_PROVISIONED: Final = "CertificateProvisioned"  # tracked, not part of Ready

REASON_NOT_OWNED: Final = "NotOwned"
REASON_ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
REASON_REVISION_MISSING: Final = "RevisionMissing"
REASON_REVISION_NOT_OWNED: Final = "RevisionNotOwned"
REASON_TLS_NOT_ENABLED: Final = "TLSNotEnabled"

ROUTE_CONDITION_SET: Final = ConditionSet(CONDITION_ALL_TRAFFIC_ASSIGNED, CONDITION_INGRESS_READY)


class RouteStatusLifecycle(StatusLifecycle):
    CONDITION_SET: ClassVar[ConditionSet] = ROUTE_CONDITION_SET

    # --- IngressReady -------------------------------------------------------------------------
    def mark_service_not_owned(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_INGRESS_READY, REASON_NOT_OWNED,
            f'There is an existing placeholder Service "{name}" that we do not own.',
        )

    def mark_ingress_rollout_in_progress(self, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(
            CONDITION_INGRESS_READY, REASON_ROLLOUT_IN_PROGRESS,
            "A gradual rollout of the latest revision(s) is in progress.",
        )

    def mark_ingress_ready(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_INGRESS_READY)

    def mark_ingress_not_ready(self, reason: str, message: str, *, now: Now = None) -> None:
        """The data plane has not taken the config yet (Unknown) — e.g. Envoy has not ACKed it."""
        self.manage(now).mark_unknown(CONDITION_INGRESS_READY, reason, message)

    # --- AllTrafficAssigned ---------------------------------------------------------------------
    def mark_traffic_assigned(self, *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_ALL_TRAFFIC_ASSIGNED)

    def mark_traffic_not_assigned(self, reason: str, message: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(CONDITION_ALL_TRAFFIC_ASSIGNED, reason, message)

    mark_revision_target_traffic_error = mark_traffic_not_assigned

    def mark_configuration_not_ready(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(
            CONDITION_ALL_TRAFFIC_ASSIGNED, REASON_REVISION_MISSING,
            f'Configuration "{name}" is waiting for a Revision to become ready.',
        )

    def mark_configuration_failed(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_ALL_TRAFFIC_ASSIGNED, REASON_REVISION_MISSING,
            f'Configuration "{name}" does not have any ready Revision.',
        )

    def mark_revision_not_ready(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_unknown(
            CONDITION_ALL_TRAFFIC_ASSIGNED, REASON_REVISION_MISSING, f'Revision "{name}" is not yet ready.'
        )

    def mark_revision_failed(self, name: str, *, now: Now = None) -> None:
        self.manage(now).mark_false(
            CONDITION_ALL_TRAFFIC_ASSIGNED, REASON_REVISION_MISSING, f'Revision "{name}" failed to become ready.'
        )

    def mark_revision_not_owned(self, revision_name: str, expected_service: str, actual_service: str, *,
                                now: Now = None) -> None:
        """The traffic of Service ``expected_service``'s Route names a Revision of another Service."""
        message = f'Revision "{revision_name}" belongs to Service "{actual_service}", not Service "{expected_service}".'
        self.manage(now).mark_false(CONDITION_ALL_TRAFFIC_ASSIGNED, REASON_REVISION_NOT_OWNED, message)

    def mark_missing_traffic_target(self, kind: str, name: str, *, now: Now = None) -> None:
        """``kind`` is "Revision" or "Configuration"; the reason becomes e.g. ``RevisionMissing``."""
        self.manage(now).mark_false(
            CONDITION_ALL_TRAFFIC_ASSIGNED, f"{kind}Missing", f'{kind} "{name}" referenced in traffic not found.'
        )

    # --- CertificateProvisioned (tracked only) -------------------------------------------------
    def mark_tls_not_enabled(self, message: str = "external-domain-tls is not enabled", *, now: Now = None) -> None:
        self.manage(now).mark_true(CONDITION_CERTIFICATE_PROVISIONED, REASON_TLS_NOT_ENABLED, message)
