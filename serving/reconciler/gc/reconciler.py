"""The revision garbage collector: deletes a Configuration's stale non-active Revisions.

Runs on Configuration keys with its own queue (it writes no status). The decision is
``resources.policy.decide``; each deletion is a Kubernetes delete of the Revision (its
Deployment, Service and PodAutoscaler follow through owner references) and a ``Deleted``
event on the Configuration.

Side effects: deletes Revisions; events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from knserve.clock import Clock
from kube.cache import Store
from kube.client import KubeClient
from kube.errors import NotFound
from kube.events import NORMAL, EventSink
from kube.objects import is_controlled_by, split_key
from kube.resources import REVISIONS
from serving.apis.v1 import Configuration, Revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.configuration.reconciler import REVISIONS_BY_CONFIGURATION
from serving.reconciler.gc.resources.policy import decide

log = logging.getLogger(__name__)


class RevisionCollector:
    def __init__(
        self, *, client: KubeClient, configurations: Store, revisions: Store, config: Callable[[], ConfigSnapshot],
        clock: Clock, events: EventSink,
    ) -> None:
        self.client = client
        self.configurations = configurations
        self.revisions = revisions
        self.config = config
        self.clock = clock
        self.events = events

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        found = self.configurations.get(namespace, name)
        if found is None or found.get("metadata", {}).get("deletionTimestamp"):
            return None
        uid = str(found.get("metadata", {}).get("uid") or "")
        owned = [obj for obj in self.revisions.by_index(REVISIONS_BY_CONFIGURATION, key) if is_controlled_by(obj, uid)]
        config = self.config().gc
        if len(owned) <= config.min_non_active_revisions:
            return None  # nothing is collected yet (``decide`` says the same): skip parsing them all
        configuration = Configuration.model_validate(found)
        revisions = [Revision.model_validate(obj) for obj in owned]
        decision = decide(revisions, latest_ready=configuration.status.latest_ready_revision_name,
                          config=config, now=self.clock.now().replace(microsecond=0))
        for revision_name in decision.delete:
            try:
                await self.client.delete(REVISIONS, namespace, revision_name, propagation_policy="Background")
            except NotFound:
                continue
            self.events.event(found, NORMAL, "Deleted", f'Deleted stale Revision "{revision_name}"')
            log.info("gc: deleted revision %s/%s", namespace, revision_name)
        return decision.recheck_after
