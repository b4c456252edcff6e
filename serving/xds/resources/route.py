"""Envoy route configurations (RDS resources): one virtual host per host name.

Every virtual host answers ``host`` and ``host:<port>`` and sends everything to the rule's
revisions by weight, adding ``Knative-Serving-Revision`` / ``Knative-Serving-Namespace`` per
revision so queue-proxy and the activator know where a request is headed. A Host no virtual
host claims gets Envoy's own 404. Pure builders; no side effects.
"""

from __future__ import annotations

import datetime
from typing import Final

from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.route import v3 as route_v3

from serving.networking import NAMESPACE_HEADER, REVISION_HEADER
from serving.xds.model import RevisionKey, Split
from serving.xds.resources.names import cluster_name

NO_TIMEOUT: Final = datetime.timedelta(0)
"""Route timeout 0 disables Envoy's 15 s default: request timeouts live in the activator and queue-proxy."""

SAFE_RETRY_ON: Final = "connect-failure,refused-stream,reset-before-request"
"""Retry only what never reached the app: a refused connection or a stream reset before any byte went out."""
SAFE_RETRIES: Final = 2


def weights(splits: tuple[Split, ...]) -> tuple[tuple[RevisionKey, int], ...]:
    """Positive weight per revision, in first-mention order: repeated revisions add up, zeros drop out."""
    total: dict[RevisionKey, int] = {}
    for split in splits:
        total[split.key] = total.get(split.key, 0) + split.percent
    return tuple((key, weight) for key, weight in total.items() if weight > 0)


def _overwrite(key: str, value: str) -> core_v3.HeaderValueOption:
    return core_v3.HeaderValueOption(
        header=core_v3.HeaderValue(key=key, value=value),
        append_action=core_v3.HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def make_cluster_weight(revision: RevisionKey, weight: int) -> route_v3.WeightedClusterClusterWeight:
    return route_v3.WeightedClusterClusterWeight(
        name=cluster_name(revision),
        weight=weight,
        request_headers_to_add=[
            _overwrite(REVISION_HEADER, revision.revision),
            _overwrite(NAMESPACE_HEADER, revision.namespace),
        ],
    )


def make_route(splits: tuple[Split, ...]) -> route_v3.Route:
    """Every path to the split's revisions by weight: no timeout, safe retries only."""
    targets = weights(splits)
    if not targets:
        raise ValueError("a route needs at least one split with a positive percent")
    return route_v3.Route(
        match=route_v3.RouteMatch(prefix="/"),
        route=route_v3.RouteAction(
            weighted_clusters=route_v3.WeightedCluster(
                clusters=[make_cluster_weight(revision, weight) for revision, weight in targets]
            ),
            timeout=NO_TIMEOUT,
            retry_policy=route_v3.RetryPolicy(retry_on=SAFE_RETRY_ON, num_retries=SAFE_RETRIES),
        ),
    )


def domains(host: str) -> list[str]:
    """``[host, host:*]``: with and without a port in the Host header."""
    return [host, f"{host}:*"]


def make_virtual_host(host: str, splits: tuple[Split, ...]) -> route_v3.VirtualHost:
    """The virtual host for one host name, named after it."""
    return route_v3.VirtualHost(name=host, domains=domains(host), routes=[make_route(splits)])


def make_route_config(name: str, virtual_hosts: list[route_v3.VirtualHost]) -> route_v3.RouteConfiguration:
    """A route configuration; ``validate_clusters`` makes Envoy refuse routes to clusters it lacks."""
    return route_v3.RouteConfiguration(name=name, virtual_hosts=virtual_hosts, validate_clusters=True)
