"""``XdsController``: the face of the xDS layer for the controller process.

The Route reconciler builds an :class:`~serving.xds.model.IngressModel` and calls
:meth:`XdsController.update`, which translates it, checks it and hands the snapshot to every
Envoy of the ingress (returning the snapshot version). Readiness is learned from the data
plane: :meth:`XdsController.wait_route_served` returns once the Envoys of the readiness
quorum have ACKed the routes of a snapshot containing that Route's generation, and raises
:class:`ConfigRejectedError` with Envoy's own error when every Envoy that answered refused it
(an Envoy keeps serving its last good config). :meth:`XdsController.on_progress` lets a
reconciler re-queue Routes when Envoys move on, instead of waiting.

The quorum is every connected Envoy of the ingress group except those that cannot hold
others back: one that refused (NACKed) the config a Route needs, and one that has been
behind for ``ack_timeout`` seconds without acknowledging anything. Such an Envoy keeps its
stream and gets every new snapshot; it is named in a warning, and counts again once it
acknowledges. A Route is served when no Envoy of the quorum is still on its way to it and
at least one Envoy serves it. (Only authenticated Envoys reach the cache at all when the
server requires client certificates: see ``server``.)

Side effects: :meth:`start` listens for Envoy's ADS streams (see ``server``; over mutual TLS
when the controller is given ``certificates``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import dataclasses
from collections.abc import Callable
from typing import Final

from knserve.clock import Clock, SystemClock
from serving.xds.cache import NodeStatus, SnapshotCache
from serving.xds.model import IngressModel
from serving.xds.sequencer import Rejection
from serving.xds.server import AdsServer
from serving.xds.snapshot import Snapshot
from serving.xds.tls import XdsCertificates
from serving.xds.translate import HostConflict, IngressSettings, Translator

log = logging.getLogger(__name__)

INGRESS_NODE_CLUSTER: Final = "knserve-ingress"
"""The bootstrap ``node.cluster`` of knserve's Envoys: they all get the same snapshot."""

_HISTORY_PER_ROUTE: Final = 16
DEFAULT_ACK_TIMEOUT: Final = 10.0
"""Seconds an Envoy may stay behind without acknowledging anything before readiness stops
waiting for it (a real Envoy ACKs a thousand Services' config within a few seconds)."""


@dataclasses.dataclass(slots=True)
class _Progress:
    """What readiness remembers of one Envoy: where it was and since when it is behind."""

    served_version: int
    acked: dict[str, str]
    connected: bool
    behind_since: float | None
    """When the Envoy was last offered something newer or last acknowledged; None: not behind."""
    excluded: str = ""
    """Why it is out of the quorum (warned once); empty while it is in."""


class ConfigRejectedError(RuntimeError):
    """An Envoy refused the config; it keeps serving the last config it accepted."""

    def __init__(self, node_id: str, rejection: Rejection) -> None:
        self.node_id = node_id
        self.rejection = rejection
        super().__init__(f"Envoy {node_id} refused the ingress config (snapshot {rejection.snapshot_version}): {rejection}")


class XdsController:
    """Translate models, publish snapshots, serve ADS, and tell when Envoy serves a Route."""

    def __init__(
        self,
        *,
        settings: IngressSettings = IngressSettings(),
        group: str = INGRESS_NODE_CLUSTER,
        cache: SnapshotCache | None = None,
        clock: Clock | None = None,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        certificates: XdsCertificates | None = None,
    ) -> None:
        self.group = group
        self.cache = cache if cache is not None else SnapshotCache()
        self.conflicts: tuple[HostConflict, ...] = ()
        """Hosts claimed by two Routes in the last model (the earlier rule keeps each)."""
        self._translator = Translator(settings)
        self._server = AdsServer(self.cache, certificates=certificates)
        self._clock = clock if clock is not None else SystemClock()
        self.ack_timeout = ack_timeout
        self._version = 0
        self._route_history: dict[str, list[tuple[int, int]]] = {}
        self._progress = asyncio.Event()
        self._nodes: dict[str, _Progress] = {}
        self.cache.add_observer(self._on_status)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, address: str = "127.0.0.1:0") -> int:
        """Serve ADS on ``address`` (``host:port``); returns the port."""
        return await self._server.start(address)

    async def stop(self, grace: float | None = None) -> None:
        await self._server.stop(grace)

    @property
    def port(self) -> int:
        return self._server.port

    # --- writing ---------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The version of the latest snapshot published (0: none yet)."""
        return self._version

    def update(self, model: IngressModel) -> int:
        """Publish ``model``; returns its snapshot version. ``translate.ModelError`` if it is not servable."""
        translation = self._translator.translate(model, version=self._version + 1)
        self.conflicts = translation.conflicts
        for conflict in translation.conflicts:
            log.warning("host %s on the %s listener is claimed by %s and %s; %s keeps it",
                        conflict.host, conflict.listener, conflict.kept, conflict.dropped, conflict.kept)
        self.publish(translation.snapshot)
        generations = model.route_generations()
        for route_key in list(self._route_history):
            if route_key not in generations:
                del self._route_history[route_key]
        for route_key, generation in generations.items():
            history = self._route_history.setdefault(route_key, [])
            if not history or history[-1][1] != generation:
                history.append((translation.snapshot.version, generation))
                del history[:-_HISTORY_PER_ROUTE]
        return translation.snapshot.version

    def publish(self, snapshot: Snapshot) -> int:
        """Hand a ready-made snapshot to the Envoys (``update`` does this for a model)."""
        if snapshot.version <= self._version:
            raise ValueError(f"snapshot version {snapshot.version} is not newer than {self._version}")
        self._version = snapshot.version
        self.cache.set_snapshot(self.group, snapshot)
        return snapshot.version

    # --- reading ---------------------------------------------------------------------------------

    def statuses(self) -> list[NodeStatus]:
        return self.cache.statuses(self.group)

    def on_progress(self, callback: Callable[[NodeStatus], None]) -> Callable[[], None]:
        """Call ``callback`` on every connect, ACK, NACK and disconnect; returns the way to stop."""
        return self.cache.add_observer(lambda status: callback(status) if status.group == self.group else None)

    def is_served(self, version: int) -> bool:
        """The quorum's Envoys serve the routes of snapshot ``version`` or newer (at least one does).

        Raises :class:`ConfigRejectedError` when every Envoy that is not stalled refused what
        it needs to get there.
        """
        connected = [status for status in self.statuses() if status.connected]
        serving = [status for status in connected if status.served_version >= version]
        if serving and len(serving) == len(connected):
            return True
        now = self._clock.monotonic()
        refusals = []
        for status in connected:
            if status.served_version >= version:
                continue
            if status.rejection is not None and status.target_version >= version:
                refusals.append(status)
                self._exclude(status.node.id, f"it refused the config: {status.rejection}")
            elif self._stalled(status.node.id, now):
                self._exclude(status.node.id, f"it has acknowledged nothing for {self.ack_timeout:g}s")
            else:
                return False  # on its way
        if serving:
            return True
        if refusals:
            raise ConfigRejectedError(refusals[0].node.id, refusals[0].rejection)  # type: ignore[arg-type]
        return False

    def lagging(self) -> dict[str, str]:
        """Envoys left out of the readiness quorum, and why (node id -> sentence)."""
        return {node_id: progress.excluded for node_id, progress in self._nodes.items() if progress.excluded}

    def _stalled(self, node_id: str, now: float) -> bool:
        progress = self._nodes.get(node_id)
        return (progress is not None and progress.behind_since is not None
                and now - progress.behind_since >= self.ack_timeout)

    def _exclude(self, node_id: str, reason: str) -> None:
        progress = self._nodes.get(node_id)
        if progress is not None and not progress.excluded:
            progress.excluded = reason
            log.warning("Envoy %s no longer holds Route readiness back: %s (its stream stays open)", node_id, reason)

    def _next_stall(self) -> float | None:
        """Seconds until the next Envoy behind counts as stalled (None: no Envoy is behind)."""
        now = self._clock.monotonic()
        waits = [wait for progress in self._nodes.values()
                 if progress.connected and progress.behind_since is not None
                 and (wait := progress.behind_since + self.ack_timeout - now) > 0]
        return min(waits) + 0.01 if waits else None

    def first_version(self, route_key: str, generation: int) -> int:
        """The first snapshot holding Route ``route_key`` at ``generation`` or later."""
        for version, known in self._route_history.get(route_key, ()):
            if known >= generation:
                return version
        raise LookupError(f"Route {route_key} at generation {generation} was never given to update()")

    def is_route_served(self, route_key: str, generation: int) -> bool:
        return self.is_served(self.first_version(route_key, generation))

    async def wait_served(self, version: int, *, timeout: float | None = None) -> None:
        """Wait until :meth:`is_served` (``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while not self.is_served(version):
                progress = self._progress
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progress.wait(), self._next_stall())

    async def wait_route_served(self, route_key: str, generation: int, *, timeout: float | None = None) -> None:
        """Wait until Envoy serves Route ``route_key`` at ``generation`` (or refuses it)."""
        await self.wait_served(self.first_version(route_key, generation), timeout=timeout)

    async def served(self, route_key: str, generation: int) -> None:
        """``wait_route_served`` without a deadline, as the Route reconciler's ingress sink asks it."""
        await self.wait_route_served(route_key, generation)

    def _on_status(self, status: NodeStatus) -> None:
        if status.group == self.group:
            self._track(status)
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    def _track(self, status: NodeStatus) -> None:
        """Note when ``status``'s Envoy fell behind or last moved (its stall clock)."""
        node_id = status.node.id
        now = self._clock.monotonic()
        behind = status.connected and status.target_version > status.served_version
        known = self._nodes.get(node_id)
        if known is None:
            live = {other.node.id for other in self.cache.statuses(self.group)}
            self._nodes = {key: value for key, value in self._nodes.items() if key in live}
            self._nodes[node_id] = _Progress(status.served_version, dict(status.acked), status.connected,
                                             now if behind else None)
            return
        moved = (status.served_version != known.served_version or status.acked != known.acked
                 or status.connected != known.connected)
        if not behind:
            known.behind_since = None
        elif known.behind_since is None or moved:
            known.behind_since = now
        if moved or not behind:
            if known.excluded and (not behind or status.acked != known.acked):
                log.info("Envoy %s acknowledges again: it counts for Route readiness", node_id)
                known.excluded = ""
        known.served_version, known.acked, known.connected = status.served_version, dict(status.acked), status.connected
