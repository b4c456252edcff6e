"""Option-style factories for xDS test objects: small, consistent snapshots of fake resources.

The resources' bytes are markers, not protobuf: the snapshot, sequencer, cache and stream
never look inside them. Every snapshot has one listener ``l`` using route configuration
``r``, which sends to the ``routed`` clusters; every cluster has endpoints of its own name.
"""

from __future__ import annotations

from collections.abc import Mapping

from serving.xds import type_urls
from serving.xds.snapshot import Resource, Snapshot


def resource(type_url: str, name: str, body: str = "", references: tuple[str, ...] = ()) -> Resource:
    return Resource.create(type_url, name, f"{name}:{body}".encode(), references)


def make_snapshot(
    version: int,
    *,
    clusters: tuple[str, ...] = ("a",),
    routed: tuple[str, ...] | None = None,
    route_body: str = "",
    endpoints: Mapping[str, str] | None = None,
    listener_body: str = "",
) -> Snapshot:
    routed = clusters if routed is None else routed
    endpoints = endpoints or {}
    return Snapshot.create(
        version,
        clusters=[resource(type_urls.CLUSTER, name, references=(name,)) for name in clusters],
        endpoints=[resource(type_urls.ENDPOINT, name, endpoints.get(name, "")) for name in clusters],
        listeners=[resource(type_urls.LISTENER, "l", listener_body, ("r",))],
        routes=[resource(type_urls.ROUTE, "r", f"{routed}{route_body}", routed)],
    )
