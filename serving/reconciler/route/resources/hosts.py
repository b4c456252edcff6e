"""Host names and URLs of a Route and its tags (config-domain, config-network templates).

``hello`` in ``default`` gets ``http://hello.default.example.com``; tag ``canary`` gets
``http://canary-hello.default.example.com``; a Route labelled
``networking.knative.dev/visibility: cluster-local`` gets ``svc.cluster.local`` as its domain.
Every Route is also reachable inside the cluster as ``<name>.<ns>.svc.cluster.local`` (and the
short ``<name>.<ns>.svc``, ``<name>.<ns>``). Pure; no I/O.
"""

from __future__ import annotations

from knserve.networking import VISIBILITY_CLUSTER_LOCAL, VISIBILITY_LABEL
from serving.apis.v1 import Route
from serving.config.domain import CLUSTER_LOCAL_DOMAIN
from serving.config.snapshot import ConfigSnapshot


def is_cluster_local(route: Route) -> bool:
    return route.metadata.label(VISIBILITY_LABEL) == VISIBILITY_CLUSTER_LOCAL


def _host(route: Route, config: ConfigSnapshot, name: str) -> str:
    labels = route.metadata.labels or {}
    return config.network.host(
        name=name, namespace=route.namespace, domain=config.domain.lookup(labels),
        annotations=route.metadata.annotations, labels=labels,
    )


def route_host(route: Route, config: ConfigSnapshot) -> str:
    return _host(route, config, route.name)


def tag_host(route: Route, config: ConfigSnapshot, tag: str) -> str:
    return _host(route, config, config.network.tag_name(name=route.name, tag=tag))


def scheme(route: Route, config: ConfigSnapshot) -> str:
    return "http" if is_cluster_local(route) else config.network.default_external_scheme


def route_url(route: Route, config: ConfigSnapshot) -> str:
    return f"{scheme(route, config)}://{route_host(route, config)}"


def tag_url(route: Route, config: ConfigSnapshot, tag: str) -> str:
    return f"{scheme(route, config)}://{tag_host(route, config, tag)}"


def address_url(route: Route) -> str:
    return f"http://{route.name}.{route.namespace}.{CLUSTER_LOCAL_DOMAIN}"
