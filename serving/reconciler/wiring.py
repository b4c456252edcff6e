"""What every kind's wiring needs: the shared informers, client, config, clock and events.

No I/O.
"""

from __future__ import annotations

import dataclasses

from knserve.clock import Clock
from kube.client import KubeClient
from kube.events import EventSink
from kube.informer import InformerFactory
from serving.reconciler.config_store import ConfigStore
from serving.reconciler.service.metrics_reader import RequestMetricsReader
from serving.xds.model import Endpoint


@dataclasses.dataclass
class Collaborators:
    client: KubeClient
    informers: InformerFactory
    config: ConfigStore
    clock: Clock
    events: EventSink
    workers: int = 4
    activator: tuple[Endpoint, ...] = ()
    """Where the activator listens; revisions it must front route there (empty: see below)."""
    activator_service: str | None = None
    """Without fixed ``activator`` addresses: the activator's Service ("namespace/name"), whose
    ready endpoints (port ``http``) are where revisions it fronts route (None: never)."""
    queue_service: str | None = None
    """The call queue's Service ("namespace/name"): while it has EndpointSlices, every host sends
    asynchronous calls (``Prefer: respond-async``) to its ready endpoints (None: no queue)."""
    request_metrics: RequestMetricsReader | None = None
    """Where canary analysis reads Revisions' request summaries (the autoscaler; None: nowhere,
    so an analysis sees no requests and, past its wait limit, rolls back)."""
