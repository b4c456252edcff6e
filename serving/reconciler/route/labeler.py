"""Routing state of Revisions and Configurations, as Knative's labeler (v2) keeps it.

Every Revision and Configuration a Route sends traffic to lists the Route in its
``serving.knative.dev/routes`` annotation; such a Revision is labelled
``serving.knative.dev/routingState: active``. When a Route stops using one, its name is
removed; a Revision left with no Route becomes ``reserve``. ``routingStateModified`` records
when the state last changed (the garbage collector's "last active" time).

Side effects: merge-patches Revision and Configuration metadata.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from knserve.networking import ROUTES_ANNOTATION, ROUTING_STATE_LABEL, ROUTING_STATE_MODIFIED_ANNOTATION
from kube.cache import Store
from kube.client import KubeClient
from kube.errors import NotFound
from kube.objects import JSON
from kube.resources import CONFIGURATIONS, REVISIONS, Resource
from serving.apis.conditions import format_time
from serving.apis.v1 import Route
from serving.reconciler.configuration.resources.revision import ROUTING_STATE_ACTIVE, ROUTING_STATE_RESERVE

BY_ROUTE_INDEX = "routes"  # index of revision and configuration stores: "namespace/<route>" per routes annotation item


def routes_of(obj: JSON) -> set[str]:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ROUTES_ANNOTATION) or ""
    return {name for name in raw.split(",") if name}


def routing_patch(obj: JSON, routes: set[str], *, labels_state: bool, now: datetime.datetime) -> dict[str, Any] | None:
    """The metadata merge patch that makes ``obj`` list exactly ``routes`` (None: nothing to do)."""
    metadata = obj.get("metadata") or {}
    annotations: dict[str, Any] = {}
    labels: dict[str, Any] = {}
    if routes_of(obj) != routes:
        annotations[ROUTES_ANNOTATION] = ",".join(sorted(routes)) if routes else None
    if labels_state:
        state = ROUTING_STATE_ACTIVE if routes else ROUTING_STATE_RESERVE
        if (metadata.get("labels") or {}).get(ROUTING_STATE_LABEL) != state:
            labels[ROUTING_STATE_LABEL] = state
            annotations[ROUTING_STATE_MODIFIED_ANNOTATION] = format_time(now)
    if not annotations and not labels:
        return None
    patch: dict[str, Any] = {}
    if annotations:
        patch["annotations"] = annotations
    if labels:
        patch["labels"] = labels
    return {"metadata": patch}


class RoutingLabeler:
    def __init__(self, *, client: KubeClient, configurations: Store, revisions: Store) -> None:
        self.client = client
        self.configurations = configurations
        self.revisions = revisions

    async def label(
        self, route: Route, revisions: Iterable[str], configurations: Iterable[str], *, now: datetime.datetime
    ) -> None:
        await self._sync(REVISIONS, self.revisions, route, set(revisions), labels_state=True, now=now)
        await self._sync(CONFIGURATIONS, self.configurations, route, set(configurations), labels_state=False, now=now)

    async def _sync(
        self, resource: Resource, store: Store, route: Route, wanted: set[str], *, labels_state: bool,
        now: datetime.datetime,
    ) -> None:
        namespace = route.namespace
        candidates = {obj["metadata"]["name"]: obj for obj in store.by_index(BY_ROUTE_INDEX, route.key)}
        for name in wanted:
            if name not in candidates and (found := store.get(namespace, name)) is not None:
                candidates[name] = found
        for name, obj in sorted(candidates.items()):
            routes = routes_of(obj)
            if name in wanted:
                new_routes = routes | {route.name}
            elif route.name in routes:
                new_routes = routes - {route.name}
            else:
                continue
            patch = routing_patch(obj, new_routes, labels_state=labels_state, now=now)
            if patch is None:
                continue
            try:
                patched = await self.client.patch(resource, namespace, name, patch)
            except NotFound:
                continue
            store.remember_write(patched)
