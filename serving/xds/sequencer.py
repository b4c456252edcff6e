"""Make before break: the order one Envoy gets a new snapshot in (DESIGN §6), as a state machine.

Moving an Envoy from what it runs to a new snapshot takes three steps, each offered only
when Envoy has acknowledged the one before:

1. **warming**: clusters and endpoints become what Envoy runs plus everything new (the new
   definitions win). Both go out at once: Envoy withholds the cluster ACK until new clusters
   have endpoints, so waiting for it before sending endpoints would deadlock.
2. **routing**: listeners and route configurations become the new ones. Every cluster they
   name is already warm in Envoy.
3. **pruning**: clusters and endpoints become exactly the new ones, dropping those only the
   old routes used; the old routes are gone by now.

A type whose content does not change keeps its version and needs no new ACK, so a weight
change goes straight to step 2 and an endpoint change is done after step 1. A new snapshot
arriving mid-way starts again at step 1 from what Envoy has acknowledged (not from what was
offered, which may have been refused). A refused (NACKed) set is never offered again; the
sequence stops there and Envoy keeps serving its last good config until the next snapshot.

Known gap: a control plane that restarts knows nothing of what Envoy runs, so its first step
1 offers the new snapshot's clusters only. If a revision's cluster was dropped from the model
while the control plane was down, Envoy loses it before it gets the routes that no longer
use it: a few milliseconds of 503s for those routes. (The same model, the usual case, changes
nothing in Envoy.)

:class:`NodeSequencer` is fed snapshots, ACKs and NACKs and answers what to offer per type.
Pure state machine; no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import enum

from serving.xds import type_urls
from serving.xds.snapshot import ResourceSet, Snapshot

_CLUSTER_TYPES = (type_urls.CLUSTER, type_urls.ENDPOINT)
_ROUTING_TYPES = (type_urls.LISTENER, type_urls.ROUTE)
_REMEMBERED_OFFERS = 32  # sets a late NACK can still be traced to a snapshot for


class Stage(enum.Enum):
    IDLE = "idle"
    """No snapshot yet: nothing is offered."""
    WARMING = "warming"
    ROUTING = "routing"
    PRUNING = "pruning"
    SETTLED = "settled"


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """Envoy refused ``version`` of ``type_url`` (offered for snapshot ``snapshot_version``)."""

    type_url: str
    version: str
    snapshot_version: int
    message: str

    def __str__(self) -> str:
        return f"Envoy rejected {type_urls.SHORT_NAMES[self.type_url]} version {self.version}: {self.message}"


class NodeSequencer:
    """What to offer one Envoy, per type, on its way to the latest snapshot."""

    def __init__(self) -> None:
        self.target: Snapshot | None = None
        self.stage = Stage.IDLE
        self.served_version = 0
        """The newest snapshot whose listeners and routes (and so its clusters) Envoy ACKed."""
        self.last_rejection: Rejection | None = None
        self._offered: dict[str, ResourceSet] = {}
        self._offered_for: dict[tuple[str, str], int] = {}
        self._acked: dict[str, ResourceSet] = {}
        self._rejected: dict[str, set[str]] = {}

    # --- queries -------------------------------------------------------------------------------

    def offered(self, type_url: str) -> ResourceSet | None:
        """The set to offer for ``type_url`` now; None while Envoy must not get that type yet."""
        return self._offered.get(type_url)

    def acked_version(self, type_url: str) -> str | None:
        acked = self._acked.get(type_url)
        return acked.version if acked is not None else None

    def is_rejected(self, type_url: str, version: str) -> bool:
        return version in self._rejected.get(type_url, ())

    def blocking_rejection(self) -> Rejection | None:
        """The refusal that stops the sequence: Envoy refused a set still on offer."""
        rejection = self.last_rejection
        if rejection is None:
            return None
        offered = self._offered.get(rejection.type_url)
        return rejection if offered is not None and offered.version == rejection.version else None

    # --- events --------------------------------------------------------------------------------

    def set_target(self, snapshot: Snapshot) -> None:
        """Start moving towards ``snapshot`` (step 1), from what Envoy has acknowledged."""
        self.target = snapshot
        self.stage = Stage.WARMING
        for type_url in _CLUSTER_TYPES:
            acked = self._acked.get(type_url)
            wanted = snapshot[type_url]
            self._offer(type_url, acked.merged(wanted) if acked is not None else wanted)
        self._advance()

    def ack(self, type_url: str, accepted: ResourceSet) -> None:
        """Envoy accepted ``accepted`` (the set it was sent, whatever has been offered since)."""
        self._acked[type_url] = accepted
        self._advance()

    def nack(self, type_url: str, refused: ResourceSet, message: str) -> Rejection:
        """Envoy refused ``refused``; it will not be offered again."""
        self._rejected.setdefault(type_url, set()).add(refused.version)
        self.last_rejection = Rejection(
            type_url=type_url,
            version=refused.version,
            snapshot_version=self._offered_for.get((type_url, refused.version), 0),
            message=message,
        )
        return self.last_rejection

    # --- steps ---------------------------------------------------------------------------------

    def _offer(self, type_url: str, resources: ResourceSet) -> None:
        assert self.target is not None
        current = self._offered.get(type_url)
        if current is None or current.version != resources.version:
            self._offered[type_url] = resources
            self._offered_for.setdefault((type_url, resources.version), self.target.version)
            if len(self._offered_for) > _REMEMBERED_OFFERS:
                del self._offered_for[next(iter(self._offered_for))]

    def _settled(self, type_url: str) -> bool:
        """Envoy runs what is offered, or there is nothing it would ask for and ACK."""
        offered = self._offered[type_url]
        acked = self._acked.get(type_url)
        if acked is not None and acked.version == offered.version:
            return True
        # Envoy subscribes to endpoints and route configurations by name, and only once a
        # cluster or listener needs them: an empty set is never requested, so never ACKed.
        return type_url not in type_urls.WILDCARD_TYPES and not offered.items

    def _advance(self) -> None:
        target = self.target
        while target is not None:
            if self.stage is Stage.WARMING and all(map(self._settled, _CLUSTER_TYPES)):
                self.stage = Stage.ROUTING
                for type_url in _ROUTING_TYPES:
                    self._offer(type_url, target[type_url])
            elif self.stage is Stage.ROUTING and all(map(self._settled, _ROUTING_TYPES)):
                self.served_version = max(self.served_version, target.version)
                self.stage = Stage.PRUNING
                for type_url in _CLUSTER_TYPES:
                    self._offer(type_url, target[type_url])
            elif self.stage is Stage.PRUNING and all(map(self._settled, _CLUSTER_TYPES)):
                self.stage = Stage.SETTLED
            else:
                return
