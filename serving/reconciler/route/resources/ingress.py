"""Pure builders of a Route's part of the ingress model (``serving.xds.model``).

A Route gives, per routing group (the default group and one per tag), an external rule on
its public host (unless the Route, or just that group, is cluster-local) and a cluster-local rule on its in-cluster
hosts, each splitting traffic over revisions. Backends are built separately from the
revisions' ready EndpointSlice addresses at the queue-proxy port. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from knserve.callpolicy import ASYNC_ALWAYS, ASYNC_ANNOTATION
from knserve.networking import QUEUE_HTTP_PORT
from knserve.stats_wire import activator_in_path
from kube.endpoints import ready_addresses, ready_endpoints_at
from kube.objects import JSON
from serving.apis.v1 import Route
from serving.config.domain import CLUSTER_LOCAL_DOMAIN
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.route.resources.hosts import is_cluster_local, route_host, tag_host
from serving.reconciler.route.resources.traffic import DEFAULT_GROUP
from serving.xds.model import Endpoint, IngressRule, RevisionBackend, Split, Visibility


def _local_hosts(host_name: str, namespace: str) -> tuple[str, ...]:
    return (f"{host_name}.{namespace}.{CLUSTER_LOCAL_DOMAIN}", f"{host_name}.{namespace}.svc",
            f"{host_name}.{namespace}")


def make_ingress_rules(
    route: Route, groups: Mapping[str, tuple[tuple[str, int], ...]], config: ConfigSnapshot,
    private: Collection[str] = (),
) -> tuple[IngressRule, ...]:
    """Per group an external rule (unless the Route, or that group in ``private``, is
    cluster-local) and a cluster-local one."""
    namespace = route.namespace
    route_local = is_cluster_local(route)
    # knserve.dev/async: always (the Service's annotations reach its Route): every request is queued
    always = (route.metadata.annotations or {}).get(ASYNC_ANNOTATION, "").strip() == ASYNC_ALWAYS
    rules: list[IngressRule] = []
    for tag in sorted(groups):
        splits = tuple(Split(revision, namespace, percent) for revision, percent in groups[tag] if percent > 0)
        if not splits:
            continue
        local_name = route.name if tag == DEFAULT_GROUP else config.network.tag_name(name=route.name, tag=tag)
        if not route_local and tag not in private:
            host = route_host(route, config) if tag == DEFAULT_GROUP else tag_host(route, config, tag)
            rules.append(IngressRule(namespace, route.name, (host,), splits, Visibility.EXTERNAL_IP,
                                     async_always=always))
        rules.append(IngressRule(namespace, route.name, _local_hosts(local_name, namespace), splits,
                                 Visibility.CLUSTER_LOCAL, async_always=always))
    return tuple(rules)


def service_endpoints(slices: Iterable[JSON], port_name: str) -> tuple[Endpoint, ...]:
    """The ready endpoints of a Service's EndpointSlices at the port named ``port_name``."""
    return tuple(Endpoint(address, port) for address, port in ready_endpoints_at(slices, port_name))


def ready_endpoints(slices: Iterable[JSON], *, port: int = QUEUE_HTTP_PORT) -> tuple[Endpoint, ...]:
    """The ready addresses of a Service's EndpointSlices, at ``port``."""
    return tuple(Endpoint(address, port) for address in ready_addresses(slices))


def make_backend(
    namespace: str,
    revision: str,
    slices: Iterable[JSON],
    *,
    pod_autoscaler_status: Mapping[str, object] | None = None,
    activator: tuple[Endpoint, ...] = (),
) -> RevisionBackend:
    """The revision's backend: its ready pods, or the activator while the autoscaler wants it in
    the path (at zero, or with too little spare capacity) or no pod is ready.

    With no activator known (``activator`` empty) the pods are used as they are.
    """
    pods = ready_endpoints(slices)
    if activator and (not pods or activator_in_path(pod_autoscaler_status)):
        return RevisionBackend(namespace, revision, activator)
    return RevisionBackend(namespace, revision, pods)
