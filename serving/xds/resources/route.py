"""Envoy route configurations (RDS resources): one virtual host per ingress rule.

A virtual host answers each of its rule's host names as ``host`` and ``host:<port>`` and
sends everything to the rule's revisions by weight, adding ``Knative-Serving-Revision`` /
``Knative-Serving-Namespace`` per revision so queue-proxy and the activator know where a
request is headed. A Host no virtual host claims gets Envoy's own 404.

Why a virtual host per rule and not per host name: Envoy rebuilds a whole route
configuration on every change, at roughly 30-50 µs of CPU per virtual host (measured with
Envoy 1.40 here). A Knative Route has four host names (one public, three cluster-local) in
two rules, so at 1,000 services a virtual host per host name means about 4,000 virtual hosts
rebuilt per change, past the 100 ms a route change may take; per rule it is 2,000. Matching
is the same: by exact host name, with or without a port.

The call queue (``make_queue_routes``) comes first in a virtual host when there is one. Its
own dispatches come back in through the same listeners as clients' requests, so what tells
them apart is a secret: the queue sends ``K-Call-Dispatch: <ingress token>`` (the token Envoy
already shows the activator, Secret ``knserve-ingress-token``, which the queue mounts). For a
``knserve.dev/async: always`` rule every request whose ``K-Call-Dispatch`` is not exactly the
token goes to the queue, one without the header included; a client's guess is queued like
any other request. The header is not stripped as a request arrives (the listener's early
header mutation would strip the queue's own too); the route configuration removes it from
every request it forwards instead (``request_headers_to_remove``, applied after the route is
chosen), so neither the app nor the queue ever sees it.

Every virtual host retries a request Envoy could not hand to a pod, on another pod: a failed
connection or a reset before the request was sent (``RETRY_ON``), never a request a pod has
seen, so any method is safe to retry. A pod on a lost node then costs no request while its
endpoint is still listed; the cluster's outlier detection stops Envoy choosing it after a few
such failures (cluster.py). Nothing else is retried, as in Knative's own ingresses: the
activator retries what it buffers, and a pod's answer, 5xx included, reaches the client.

Pure builders; no side effects.
"""

from __future__ import annotations

import datetime
from typing import Final

from envoy_data_plane.envoy.config.core import v3 as core_v3
from envoy_data_plane.envoy.config.route import v3 as route_v3
from envoy_data_plane.envoy.type.matcher import v3 as matcher_v3
from envoy_data_plane.google import protobuf

from knserve.networking import CALL_DISPATCH_HEADER, INGRESS_TOKEN_HEADER, NAMESPACE_HEADER, REVISION_HEADER
from serving.xds.model import RevisionKey, Split
from serving.xds.resources.names import cluster_name

NO_TIMEOUT: Final = datetime.timedelta(0)
"""Route timeout 0 disables Envoy's 15 s default: request timeouts live in the activator and queue-proxy."""
RETRY_ON: Final = "connect-failure,reset-before-request"
"""What a virtual host retries: only requests no pod has seen."""
RETRIES: Final = 2
PREVIOUS_HOSTS: Final = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"


def make_retry_policy() -> route_v3.RetryPolicy:
    """Up to ``RETRIES`` more tries of a request no pod has seen, each on a pod not tried yet
    (when the revision has one)."""
    return route_v3.RetryPolicy(
        retry_on=RETRY_ON,
        num_retries=RETRIES,
        retry_host_predicate=[route_v3.RetryPolicyRetryHostPredicate(
            name="envoy.retry_host_predicates.previous_hosts",
            typed_config=protobuf.Any(type_url=f"type.googleapis.com/{PREVIOUS_HOSTS}", value=b""))],
        host_selection_retry_max_attempts=3,
    )


RETRY_POLICY: Final = make_retry_policy()


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
    """Every path to the split's revisions by weight, with no timeout and no stream idle
    timeout: the activator and the queue-proxy end a request at its revision's
    ``timeoutSeconds`` (up to ``max-revision-timeout-seconds``, 600 s by default), which
    Envoy's 5-minute default stream idle timeout would otherwise cut short.

    Retries are the virtual host's (``RETRY_POLICY``), for requests no pod has seen.
    """
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
            idle_timeout=NO_TIMEOUT,
        ),
    )


QUEUE_PATH_PREFIX: Final = "/.well-known/knserve/"
"""Calls' status, cancel, dead letters and replay: always the call queue's."""
PREFER_HEADER: Final = "prefer"
RESPOND_ASYNC: Final = "respond-async"
DISPATCH_HEADER: Final = CALL_DISPATCH_HEADER.lower()
"""What the call queue sets, to the ingress token, on its own dispatches."""


def make_queue_routes(cluster: str, *, always: bool = False, dispatch_token: str = "") -> list[route_v3.Route]:
    """Routes that send a virtual host's asynchronous calls to the call queue's ``cluster``,
    keeping the Host: ``/.well-known/knserve/...`` and any request with ``Prefer:
    respond-async``; with ``always``, any request whose ``K-Call-Dispatch`` is not exactly
    ``dispatch_token`` (the ingress token; absent counts as not). They come before the
    revision route; the queue's own dispatches carry no ``Prefer`` and do carry the token, so
    they reach the revisions."""
    action = route_v3.RouteAction(cluster=cluster, timeout=NO_TIMEOUT)
    if always:
        if not dispatch_token:
            raise ValueError("an async: always route needs the ingress token to tell the queue's dispatches apart")
        queued = route_v3.HeaderMatcher(name=DISPATCH_HEADER, string_match=matcher_v3.StringMatcher(exact=dispatch_token),
                                        invert_match=True, treat_missing_header_as_empty=True)
    else:
        queued = route_v3.HeaderMatcher(
            name=PREFER_HEADER, string_match=matcher_v3.StringMatcher(contains=RESPOND_ASYNC, ignore_case=True))
    return [
        route_v3.Route(match=route_v3.RouteMatch(prefix=QUEUE_PATH_PREFIX), route=action),
        route_v3.Route(match=route_v3.RouteMatch(prefix="/", headers=[queued]), route=action),
    ]


def domains(host: str) -> list[str]:
    """``[host, host:*]``: with and without a port in the Host header."""
    return [host, f"{host}:*"]


def make_virtual_host(name: str, hosts: tuple[str, ...], splits: tuple[Split, ...]) -> route_v3.VirtualHost:
    """The virtual host answering ``hosts`` (a name unique in its route configuration)."""
    return route_v3.VirtualHost(
        name=name, domains=[domain for host in hosts for domain in domains(host)], routes=[make_route(splits)],
        retry_policy=RETRY_POLICY,
    )


def make_route_config(name: str, virtual_hosts: list[route_v3.VirtualHost], *,
                      ingress_token: str = "") -> route_v3.RouteConfiguration:
    """A route configuration; ``validate_clusters`` makes Envoy refuse routes to clusters it lacks.

    With ``ingress_token``, every routed request carries it (``INGRESS_TOKEN_HEADER``): the
    activator's proof that the ingress, with its host and visibility rules, routed the request.
    ``K-Call-Dispatch`` is removed from every routed request, once it has served to choose the route.
    """
    return route_v3.RouteConfiguration(
        name=name, virtual_hosts=virtual_hosts, validate_clusters=True,
        request_headers_to_add=[_overwrite(INGRESS_TOKEN_HEADER, ingress_token)] if ingress_token else [],
        request_headers_to_remove=[DISPATCH_HEADER],
    )
