"""``XdsController``: the face of the xDS layer for the controller process.

The Route reconciler builds an :class:`~serving.xds.model.IngressModel` and calls
:meth:`XdsController.update`, which translates it, checks it and hands the snapshot to every
Envoy of the ingress (returning the snapshot version). Readiness is learned from the data
plane: :meth:`XdsController.wait_route_served` returns once every connected Envoy has ACKed
the routes of a snapshot containing that Route's generation, and raises
:class:`ConfigRejectedError` with Envoy's own error when an Envoy refused it (that Envoy keeps
serving its last good config). :meth:`XdsController.on_progress` lets a reconciler re-queue
Routes when Envoys move on, instead of waiting.

Side effects: :meth:`start` listens for Envoy's ADS streams (see ``server``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from serving.xds.cache import NodeStatus, SnapshotCache
from serving.xds.model import IngressModel
from serving.xds.sequencer import Rejection
from serving.xds.server import AdsServer
from serving.xds.snapshot import Snapshot
from serving.xds.translate import HostConflict, IngressSettings, Translator

log = logging.getLogger(__name__)

INGRESS_NODE_CLUSTER: Final = "knserve-ingress"
"""The bootstrap ``node.cluster`` of knserve's Envoys: they all get the same snapshot."""

_HISTORY_PER_ROUTE: Final = 16


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
    ) -> None:
        self.group = group
        self.cache = cache if cache is not None else SnapshotCache()
        self.conflicts: tuple[HostConflict, ...] = ()
        """Hosts claimed by two Routes in the last model (the earlier rule keeps each)."""
        self._translator = Translator(settings)
        self._server = AdsServer(self.cache)
        self._version = 0
        self._route_history: dict[str, list[tuple[int, int]]] = {}
        self._progress = asyncio.Event()
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
        """Every connected Envoy (at least one) serves the routes of snapshot ``version`` or newer.

        Raises :class:`ConfigRejectedError` when an Envoy refused what it needs to get there.
        """
        connected = [status for status in self.statuses() if status.connected]
        if connected and all(status.served_version >= version for status in connected):
            return True
        for status in connected:
            if status.served_version < version and status.rejection is not None and status.target_version >= version:
                raise ConfigRejectedError(status.node.id, status.rejection)
        return False

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
                await self._progress.wait()

    async def wait_route_served(self, route_key: str, generation: int, *, timeout: float | None = None) -> None:
        """Wait until Envoy serves Route ``route_key`` at ``generation`` (or refuses it)."""
        await self.wait_served(self.first_version(route_key, generation), timeout=timeout)

    async def served(self, route_key: str, generation: int) -> None:
        """``wait_route_served`` without a deadline, as the Route reconciler's ingress sink asks it."""
        await self.wait_route_served(route_key, generation)

    def _on_status(self, status: NodeStatus) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()
