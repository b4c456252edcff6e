"""The ingress model as the Route reconcilers build it, and the sink it is handed to.

``IngressState`` keeps each Route's rules and the backends of the revisions they split
traffic over, composes one immutable ``IngressModel`` from them whenever something changed,
and hands it to an ``IngressSink``. The lead wires the xDS server as the sink; the default
``LatestModelSink`` just keeps the latest model and reports every route served at once.

Each Route's rules carry a number that grows whenever they change (``set_route`` stamps it
into ``IngressRule.generation`` and returns it). The Route's own ``metadata.generation`` would
not do: what a Route publishes also changes within one generation (the latest ready revision
moving, a tag's target becoming ready), and ``IngressReady`` must wait for that too.
``IngressSink.served(route_key, generation)`` returns once the data plane serves those rules
(for the xDS server: Envoy ACKed a version containing them); the Route reconciler turns that
into ``IngressReady``.

No I/O here; the sink may do its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from serving.xds.model import EMPTY_MODEL, Endpoint, IngressModel, IngressRule, RevisionBackend, RevisionKey

log = logging.getLogger(__name__)


class IngressSink(Protocol):
    def update(self, model: IngressModel) -> object:
        """Take the new desired model (called on every change; must not block; result ignored)."""
        ...

    async def served(self, route_key: str, generation: int) -> None:
        """Return once the data plane serves ``generation`` (or newer) of Route ``route_key``."""
        ...


class LatestModelSink:
    """A sink with no data plane: remembers the latest model; every route counts as served."""

    def __init__(self) -> None:
        self.model: IngressModel = EMPTY_MODEL
        self._changed = asyncio.Event()

    def update(self, model: IngressModel) -> None:
        self.model = model
        self._changed.set()

    async def served(self, route_key: str, generation: int) -> None:
        return None

    async def wait_for(self, predicate: Callable[[IngressModel], bool], timeout: float = 10.0) -> IngressModel:
        """Wait until the latest model satisfies ``predicate`` (tests)."""
        async with asyncio.timeout(timeout):
            while not predicate(self.model):
                self._changed.clear()
                await self._changed.wait()
        return self.model


def _unstamped(rules: tuple[IngressRule, ...]) -> tuple[IngressRule, ...]:
    return tuple(dataclasses.replace(rule, generation=0) for rule in rules)


class IngressState:
    def __init__(self, sink: IngressSink) -> None:
        self.sink = sink
        self._rules: dict[str, tuple[IngressRule, ...]] = {}
        self._backends: dict[str, dict[RevisionKey, RevisionBackend]] = {}
        self._model: IngressModel = EMPTY_MODEL
        self._served: dict[str, int] = {}
        self._generations: dict[str, int] = {}  # of each Route's rules; never reset, so only grows
        self._waiters: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._inline: set[str] = set()
        self._queue: tuple[Endpoint, ...] | None = None

    def set_queue(self, endpoints: tuple[Endpoint, ...] | None) -> None:
        """Where the call queue is (None: not installed); every host routes asynchronous calls there."""
        if endpoints != self._queue:
            self._queue = endpoints
            self._publish()

    @property
    def model(self) -> IngressModel:
        return self._model

    def set_route(
        self, route_key: str, rules: tuple[IngressRule, ...], backends: Mapping[RevisionKey, RevisionBackend]
    ) -> int:
        """Publish the Route's rules and backends; the generation of its rules (for ``is_served``)."""
        current = self._rules.get(route_key)
        generation = self._generations.get(route_key, 0)
        if current is None or _unstamped(current) != _unstamped(rules):
            generation += 1
            self._generations[route_key] = generation
            rules = tuple(dataclasses.replace(rule, generation=generation) for rule in rules)
        else:
            rules = current
        if current == rules and self._backends.get(route_key) == dict(backends):
            return generation
        self._rules[route_key] = rules
        self._backends[route_key] = dict(backends)
        self._publish()
        return generation

    def remove_route(self, route_key: str) -> None:
        self._served.pop(route_key, None)
        waiter = self._waiters.pop(route_key, None)
        if waiter is not None:
            waiter[1].cancel()
        if self._rules.pop(route_key, None) is not None or self._backends.pop(route_key, None) is not None:
            self._publish()

    def _publish(self) -> None:
        rules: list[IngressRule] = []
        backends: dict[RevisionKey, RevisionBackend] = {}
        for route_key in sorted(self._rules):
            rules.extend(self._rules[route_key])
            backends.update(self._backends.get(route_key, {}))
        model = IngressModel(tuple(rules), tuple(backends[key] for key in sorted(backends)), self._queue)
        if model != self._model:
            try:
                self.sink.update(model)
            except Exception:  # a model the data plane refuses: keep the last one, try again on the next change
                log.exception("ingress: the sink refused the new model; keeping the previous one")
                return
            self._model = model

    async def is_served(self, route_key: str, generation: int, *, on_served: Callable[[], None]) -> bool:
        """True if the data plane serves ``generation`` of the Route's rules (from ``set_route``); otherwise start waiting for it
        (``on_served`` runs when it does) and return False."""
        if self._served.get(route_key, -1) >= generation:
            return True
        waiting = self._waiters.get(route_key)
        if waiting is None or waiting[0] != generation:
            if waiting is not None:
                waiting[1].cancel()
            task = asyncio.get_running_loop().create_task(
                self._wait_served(route_key, generation, on_served), name=f"ingress-served:{route_key}")
            self._waiters[route_key] = (generation, task)
            self._inline.add(route_key)
            try:
                await asyncio.sleep(0)  # a sink that already serves it answers within this tick
                await asyncio.sleep(0)
            finally:
                self._inline.discard(route_key)
        return self._served.get(route_key, -1) >= generation

    async def _wait_served(self, route_key: str, generation: int, on_served: Callable[[], None]) -> None:
        try:
            await self.sink.served(route_key, generation)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("ingress: waiting for %s generation %d failed: %s", route_key, generation, error)
            return
        finally:
            current = self._waiters.get(route_key)
            if current is not None and current[0] == generation:
                del self._waiters[route_key]
        if self._served.get(route_key, -1) < generation:
            self._served[route_key] = generation
            if route_key not in self._inline:  # the pass that asked is still running and sees it
                on_served()
