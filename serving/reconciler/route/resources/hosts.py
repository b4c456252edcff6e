"""Host names and URLs of a Route and its tags (config-domain, config-network templates).

``hello`` in ``default`` gets ``http://hello.default.example.com``; tag ``canary`` gets
``http://canary-hello.default.example.com``; a Route labelled
``networking.knative.dev/visibility: cluster-local`` gets ``svc.cluster.local`` as its domain,
and so does one tag (or the Route's own host) whose Kubernetes Service its user labelled so
(``private``: see ``private_groups``).
Every Route is also reachable inside the cluster as ``<name>.<ns>.svc.cluster.local`` (and the
short ``<name>.<ns>.svc``, ``<name>.<ns>``). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from knserve.networking import VISIBILITY_CLUSTER_LOCAL, VISIBILITY_LABEL
from serving.apis.v1 import Route
from serving.config.domain import CLUSTER_LOCAL_DOMAIN
from serving.config.snapshot import ConfigSnapshot


def is_cluster_local(route: Route) -> bool:
    return route.metadata.label(VISIBILITY_LABEL) == VISIBILITY_CLUSTER_LOCAL


def private_groups(route: Route, config: ConfigSnapshot, groups: Iterable[str],
                   labels_of: Callable[[str], Mapping[str, str] | None]) -> frozenset[str]:
    """The traffic groups (``""`` for the Route's own host, else a tag) made cluster-local one by
    one, as Knative documents: the visibility label on the group's Kubernetes Service
    (``<route>`` or ``<tag>-<route>``, read through ``labels_of(name)``)."""
    private = set()
    for group in groups:
        name = route.name if not group else config.network.tag_name(name=route.name, tag=group)
        if (labels_of(name) or {}).get(VISIBILITY_LABEL) == VISIBILITY_CLUSTER_LOCAL:
            private.add(group)
    return frozenset(private)


def _host(route: Route, config: ConfigSnapshot, name: str, private: bool = False) -> str:
    labels = route.metadata.labels or {}
    if private:
        labels = {**labels, VISIBILITY_LABEL: VISIBILITY_CLUSTER_LOCAL}
    return config.network.host(
        name=name, namespace=route.namespace, domain=config.domain.lookup(labels),
        annotations=route.metadata.annotations, labels=labels,
    )


def route_host(route: Route, config: ConfigSnapshot, *, private: bool = False) -> str:
    return _host(route, config, route.name, private)


def tag_host(route: Route, config: ConfigSnapshot, tag: str, *, private: bool = False) -> str:
    return _host(route, config, config.network.tag_name(name=route.name, tag=tag), private)


def scheme(route: Route, config: ConfigSnapshot, *, private: bool = False) -> str:
    return "http" if private or is_cluster_local(route) else config.network.default_external_scheme


def route_url(route: Route, config: ConfigSnapshot, *, private: bool = False) -> str:
    return f"{scheme(route, config, private=private)}://{route_host(route, config, private=private)}"


def tag_url(route: Route, config: ConfigSnapshot, tag: str, *, private: bool = False) -> str:
    return f"{scheme(route, config, private=private)}://{tag_host(route, config, tag, private=private)}"


def address_url(route: Route) -> str:
    return f"http://{route.name}.{route.namespace}.{CLUSTER_LOCAL_DOMAIN}"
