"""Test objects for the dashboard: Services, Revisions and metrics entries, option-style."""

from __future__ import annotations

from typing import Any

from knserve.request_metrics import RequestSummary, RevisionRequests, SecondSample


def service(name: str = "hello", namespace: str = "default", *, ready: str = "True", reason: str = "",
            url: bool = True, traffic: list[dict[str, Any]] | None = None,
            status_traffic: list[dict[str, Any]] | None = None, latest: str | None = None,
            conditions: list[dict[str, Any]] | None = None, canary: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": ready, "reason": reason}, *(conditions or [])]}
    if url:
        status["url"] = f"http://{name}.{namespace}.example.com"
    if latest:
        status["latestReadyRevisionName"] = latest
        status["latestCreatedRevisionName"] = latest
    if status_traffic is not None:
        status["traffic"] = status_traffic
    if canary is not None:
        status["canary"] = canary
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"image": "example"}]}}}
    if traffic is not None:
        spec["traffic"] = traffic
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec, "status": status}


def revision(name: str, service_name: str = "hello", namespace: str = "default", *, ready: str = "True",
             created: str = "2026-01-01T00:00:00Z", actual: int | None = 1, desired: int | None = 1) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": ready}]}
    if actual is not None:
        status["actualReplicas"] = actual
    if desired is not None:
        status["desiredReplicas"] = desired
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "labels": {"serving.knative.dev/service": service_name}},
            "status": status}


def entry(revision_name: str, *, requests: float = 0.0, errors: float = 0.0, namespace: str = "default",
          since: float = 1000.0, until: float = 1060.0, p50: float | None = None, p99: float | None = None,
          ready_pods: int | None = 1, series: tuple[SecondSample, ...] | None = None) -> RevisionRequests:
    summary = RequestSummary(
        namespace=namespace, revision=revision_name, since=since, until=until, requests=requests,
        responses={"2xx": requests - errors, "3xx": 0.0, "4xx": 0.0, "5xx": errors},
        covered_seconds=int(until - since), p50_ms=p50, p90_ms=None, p99_ms=p99)
    return RevisionRequests(summary=summary, desired_pods=1, ready_pods=ready_pods, series=series)
