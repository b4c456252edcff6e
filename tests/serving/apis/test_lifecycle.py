"""Named condition verbs per kind."""

from __future__ import annotations

from serving.apis.autoscaling.v1alpha1 import PodAutoscalerStatus
from serving.apis.v1 import ConfigurationStatus, Revision, RevisionStatus, RouteStatus, ServiceStatus

NOW = "2024-01-01T00:00:00Z"


def summary(status: object) -> dict[str, tuple[str, str | None]]:
    return {c.type: (c.status, c.reason) for c in status.conditions or []}  # type: ignore[attr-defined]


def test_revision_ready_ignores_active() -> None:
    status = RevisionStatus()
    status.initialize_conditions(now=NOW)
    status.mark_resources_available_true(now=NOW)
    status.mark_container_healthy_true(now=NOW)
    status.mark_active_false("NoTraffic", "scaled to zero", now=NOW)
    assert summary(status) == {
        "Active": ("False", "NoTraffic"),
        "ContainerHealthy": ("True", None),
        "Ready": ("True", None),
        "ResourcesAvailable": ("True", None),
    }
    assert status.is_ready()


def test_revision_resources_unavailable() -> None:
    revision = Revision()
    revision.status.mark_resources_unavailable("ImagePullBackOff", "cannot pull", now=NOW)
    assert summary(revision.status)["Ready"] == ("False", "ImagePullBackOff")
    assert revision.is_failed()


def test_revision_deployment_status() -> None:
    status = RevisionStatus()
    status.propagate_deployment_status({"conditions": [{"type": "Progressing", "status": "False",
                                                        "reason": "ProgressDeadlineExceeded", "message": "slow"}]}, now=NOW)
    assert summary(status)["ResourcesAvailable"] == ("False", "ProgressDeadlineExceeded")
    status = RevisionStatus()
    status.propagate_deployment_status({"conditions": [{"type": "Progressing", "status": "True"}]}, now=NOW)
    assert summary(status)["ResourcesAvailable"] == ("True", None)


def test_revision_autoscaler_status() -> None:
    pa = PodAutoscalerStatus(service_name="hello-00001", actual_scale=1, desired_scale=2)
    pa.mark_scale_target_initialized(now=NOW)
    pa.mark_active(now=NOW)
    status = RevisionStatus()
    status.propagate_autoscaler_status(pa, now=NOW)
    assert (status.actual_replicas, status.desired_replicas) == (1, 2)
    assert summary(status) == {"Active": ("True", None), "ContainerHealthy": ("True", None),
                               "Ready": ("True", None), "ResourcesAvailable": ("True", None)}
    pa.mark_inactive("NoTraffic", "idle", now=NOW)
    pa.actual_scale = 0
    status.propagate_autoscaler_status(pa, now=NOW)
    assert status.actual_replicas == 0
    assert summary(status)["Active"] == ("False", "NoTraffic")
    assert status.is_ready()


def test_configuration_latest_revisions() -> None:
    status = ConfigurationStatus()
    status.initialize_conditions(now=NOW)
    status.set_latest_created_revision_name("hello-00001", now=NOW)
    assert summary(status) == {"Ready": ("Unknown", None)}
    status.set_latest_ready_revision_name("hello-00001", now=NOW)
    assert summary(status) == {"Ready": ("True", None)}
    status.mark_latest_created_failed("hello-00002", "boom", now=NOW)
    ready = status.get_condition("Ready")
    assert ready is not None and (ready.reason, ready.message) == ("RevisionFailed", 'Revision "hello-00002" failed with message: boom.')


def test_route_verbs() -> None:
    status = RouteStatus()
    status.initialize_conditions(now=NOW)
    status.mark_traffic_not_assigned("RevisionMissing", 'Revision "x" referenced in traffic not found.', now=NOW)
    assert summary(status)["Ready"] == ("False", "RevisionMissing")
    status.mark_traffic_assigned(now=NOW)
    status.mark_ingress_not_ready("EnvoyNotReady", "Envoy has not taken the route yet.", now=NOW)
    assert summary(status)["Ready"] == ("Unknown", "EnvoyNotReady")
    status.mark_ingress_ready(now=NOW)
    status.mark_tls_not_enabled(now=NOW)
    assert status.is_ready()
    assert summary(status)["CertificateProvisioned"] == ("True", "TLSNotEnabled")
    status.mark_missing_traffic_target("Configuration", "c", now=NOW)
    condition = status.get_condition("AllTrafficAssigned")
    assert condition is not None and (condition.reason, condition.message) == (
        "ConfigurationMissing", 'Configuration "c" referenced in traffic not found.')


def test_service_propagates_configuration_and_route() -> None:
    configuration = ConfigurationStatus(latest_created_revision_name="a-00001", latest_ready_revision_name="a-00001")
    configuration.manage(NOW).mark_true("Ready")
    route = RouteStatus(url="http://a.default.example.com")
    route.mark_traffic_assigned(now=NOW)
    route.mark_ingress_ready(now=NOW)
    service = ServiceStatus()
    service.initialize_conditions(now=NOW)
    service.propagate_configuration_status(configuration, now=NOW)
    assert summary(service)["Ready"] == ("Unknown", None)
    service.propagate_route_status(route, now=NOW)
    assert service.is_ready()
    assert (service.url, service.latest_ready_revision_name) == ("http://a.default.example.com", "a-00001")
    service.mark_route_not_yet_ready(now=NOW)
    assert summary(service)["Ready"] == ("Unknown", "TrafficNotMigrated")
