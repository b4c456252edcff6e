"""Names of what a Revision owns. Pure; no I/O."""

from __future__ import annotations

from serving.apis.names import child_name


def deployment_name(revision_name: str) -> str:
    return child_name(revision_name, "-deployment")


def service_name(revision_name: str) -> str:
    """The Kubernetes Service in front of the revision's pods (and its EndpointSlices)."""
    return revision_name


def pod_autoscaler_name(revision_name: str) -> str:
    return revision_name
