"""The autoscaler's async shell: PodAutoscalers in, scrapes and decisions on a clock, writes out.

``AutoscalerService`` keeps one ``RevisionScaler`` per PodAutoscaler of the KPA class. For
each it runs three named loops: a scrape every second (with target-burst-capacity -1, for
the request metrics only: the activator's stats are then the whole load),
a decision every two seconds or at once when poked, and a reconcile worker that applies
``kpa.reconcile`` (replicas through ``/scale``, status through ``/status``) whenever the
decision, the pods or the PodAutoscaler change, or a scale-to-zero wait runs out.
``record`` takes the activator's stats and pokes a revision at zero. Until the first of them
arrives, a scrape showing requests that came through the activator is left out (see
``RevisionScaler.record_scraped``). Scrapes and pushes also feed each revision's
``RequestWindow`` (its responses, latencies and concurrency per second for 15 minutes),
which ``request_summary`` and ``namespace_requests`` read for the request-metrics API; it is
forgotten with the revision.

The loops only move data; every decision is in the pure modules. ``handle_event``,
``scrape``, ``tick`` and ``reconcile`` are public so tests can drive one step at a time
with a fake clock. Side effects: through the Protocols in ``autoscaler.kube`` and the
``StatsFetcher``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autoscaler.collector import ScrapeTarget
from autoscaler.config import ScalingSpec, resolve_scaling
from autoscaler.decider import TICK_SECONDS
from autoscaler.kpa import reconcile
from autoscaler.kube import (
    DeploymentScale,
    PodAutoscalerStatusWriter,
    PodAutoscalerWatch,
    PodCounts,
    RevisionPods,
    count_pods,
)
from autoscaler.requests import RequestWindow
from autoscaler.scaler import RevisionScaler
from autoscaler.scraper import ScrapeFailed, StatsFetcher, scrape_revision
from knserve.clock import Clock, SystemClock
from knserve.networking import AUTOSCALING_CLASS_ANNOTATION, KPA_CLASS
from knserve.request_metrics import RequestSummary, RevisionRequests
from knserve.stats_wire import RevisionStat
from serving.apis.autoscaling.v1alpha1 import PodAutoscaler
from serving.config.autoscaler import AutoscalerConfig

log = logging.getLogger(__name__)

SCRAPE_SECONDS = 1.0


def _key(pa: PodAutoscaler) -> tuple[str, str]:
    return (pa.namespace, pa.name)


@dataclass(eq=False)
class RevisionState:
    pa: PodAutoscaler
    scaler: RevisionScaler
    requests: RequestWindow
    counts: PodCounts | None = None  # at the last reconcile
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requeue: asyncio.TimerHandle | None = None
    requeue_after: float | None = None
    task: asyncio.Task[None] | None = None
    waiting_for_activator: bool = False  # said once that its scrapes wait for the activator's stats


class AutoscalerService:
    def __init__(
        self,
        *,
        watch: PodAutoscalerWatch,
        pods: RevisionPods,
        scale: DeploymentScale,
        status: PodAutoscalerStatusWriter,
        fetcher: StatsFetcher,
        config: AutoscalerConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        tick_interval: float = TICK_SECONDS,
        scrape_interval: float = SCRAPE_SECONDS,
    ) -> None:
        self._watch = watch
        self._pods = pods
        self._scale = scale
        self._status = status
        self._fetcher = fetcher
        self.config = config or AutoscalerConfig()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._tick_interval = tick_interval
        self._scrape_interval = scrape_interval
        self.revisions: dict[tuple[str, str], RevisionState] = {}
        self._by_revision: dict[tuple[str, str], tuple[str, str]] = {}
        self._activator_heard = False  # a stat batch came from an activator since this process started
        self._run_loops = False

    # --- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Follow the PodAutoscalers and run every revision's loops until cancelled."""
        self._run_loops = True
        try:
            async for kind, obj in self._watch.events():
                try:
                    await self.handle_event(kind, obj)
                except Exception:
                    log.exception("cannot handle %s of PodAutoscaler %s", kind, (obj.get("metadata") or {}).get("name"))
        finally:
            for key in list(self.revisions):
                await self._remove(key)

    def update_config(self, config: AutoscalerConfig) -> None:
        self.config = config
        for state in self.revisions.values():
            state.scaler.update(self._spec(state.pa), now=self._clock.time())
            state.dirty.set()

    # --- inputs ---------------------------------------------------------------------------------
    async def handle_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        now = self._clock.time()
        pa = PodAutoscaler.model_validate(obj)
        key = _key(pa)
        if kind == "DELETED" or (pa.metadata.annotation(AUTOSCALING_CLASS_ANNOTATION) or KPA_CLASS) != KPA_CLASS:
            await self._remove(key)
            return
        state = self.revisions.get(key)
        if state is None:
            counts = count_pods(await self._pods.list_pods(pa.namespace, pa.revision))
            state = RevisionState(
                pa,
                RevisionScaler(self._spec(pa), ready_pods=counts.ready, now=now),
                RequestWindow(namespace=pa.namespace, revision=pa.revision),
            )
            self.revisions[key] = state
            self._by_revision[(pa.namespace, pa.revision)] = key
            if self._run_loops:
                state.task = asyncio.get_running_loop().create_task(
                    self._revision_loops(state), name=f"autoscaler-{pa.namespace}/{pa.name}"
                )
        else:
            # This process is the only writer of the status: keep the one it last wrote.
            state.pa = pa.model_copy(update={"status": state.pa.status}) if state.counts is not None else pa
            state.scaler.update(self._spec(pa), now=now)
        state.dirty.set()

    def record(self, messages: Sequence[RevisionStat]) -> None:
        """Stats pushed by the activator; a revision at zero that gets load is decided at once."""
        now = self._clock.time()
        self._activator_heard = self._activator_heard or bool(messages)
        for message in messages:
            key = self._by_revision.get((message.namespace, message.revision))
            state = self.revisions.get(key) if key else None
            if state is None:
                continue
            state.requests.record(now, message.stat)
            if state.scaler.record(message.stat, now=now):
                log.info("poked: load for %s/%s, at zero or not decided on yet", message.namespace, message.revision)
                state.poke.set()

    # --- steps ----------------------------------------------------------------------------------
    async def scrape(self, key: tuple[str, str]) -> None:
        state = self.revisions[key]
        pods = await self._pods.list_pods(state.pa.namespace, state.pa.revision)
        targets = [ScrapeTarget(pod.ip, pod.start_time) for pod in pods if pod.serving]
        now = self._clock.time()
        try:
            stat = await scrape_revision(
                targets, self._fetcher, now=now, stable_window=state.scaler.spec.stable_window, rng=self._rng
            )
        except ScrapeFailed as failure:
            log.warning("scraping %s/%s: %s", state.pa.namespace, state.pa.revision, failure)
            return
        if stat is None or self.revisions.get(key) is not state:
            return
        # the activator counts the requests it forwarded itself: only the pods' own share here
        state.requests.record(
            now, stat, concurrency=max(0.0, stat.average_concurrent_requests - stat.average_proxied_concurrent_requests)
        )
        if not state.scaler.scrapes_pods:
            return  # target-burst-capacity -1: the activator's stats are the load; the pods' answers still count
        # recorded at the second the scrape was for, however long it took
        recorded = state.scaler.record_scraped(stat, now=now, activator_heard=self._activator_heard)
        if not recorded and not state.waiting_for_activator:
            state.waiting_for_activator = True
            log.info("%s/%s: its pods serve requests through the activator, whose stats have not reached "
                     "this autoscaler yet; its load is counted from the first of them",
                     state.pa.namespace, state.pa.revision)

    async def tick(self, key: tuple[str, str]) -> None:
        state = self.revisions[key]
        counts = count_pods(await self._pods.list_pods(state.pa.namespace, state.pa.revision))
        if state.scaler.tick(now=self._clock.time(), ready_pods=counts.ready) or counts != state.counts:
            state.dirty.set()

    async def reconcile(self, key: tuple[str, str]) -> None:
        state = self.revisions.get(key)
        if state is None:
            return
        async with state.lock:
            state.dirty.clear()
            pa = state.pa
            pods = count_pods(await self._pods.list_pods(pa.namespace, pa.revision))
            replicas = await self._scale.get_replicas(pa.namespace, pa.deployment_name)
            now = self._clock.time()
            result = reconcile(
                pa, spec=state.scaler.spec, decider=state.scaler.status, pods=pods, current_replicas=replicas, now=now
            )
            writes: list[Coroutine[Any, Any, None]] = []
            if result.replicas is not None:
                log.info("scaling %s/%s from %s to %d", pa.namespace, pa.deployment_name, replicas, result.replicas)
                writes.append(self._scale.set_replicas(pa.namespace, pa.deployment_name, result.replicas))
            if result.status != pa.status or state.counts is None:
                # serviceName: the Service in front of the revision's pods, named like the PA
                # (Knative reports its SKS there; the Revision is not Ready without it).
                body = {**result.status.to_dict(), "serviceName": pa.name}
                writes.append(self._status.write_status(pa.namespace, pa.name, body))
            # Side by side: the status (desiredScale) shows a new scale as soon as the Deployment
            # does, rather than one API round trip later.
            failures = [error for error in await asyncio.gather(*writes, return_exceptions=True)
                        if isinstance(error, BaseException)]
            if failures:
                raise failures[0]
            state.pa = pa.model_copy(update={"status": result.status})
            state.counts = pods
            state.requeue_after = result.requeue_after
            self._schedule(state, result.requeue_after)

    # --- loops ----------------------------------------------------------------------------------
    def _schedule(self, state: RevisionState, delay: float | None) -> None:
        if delay is None:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if state.requeue is not None and not state.requeue.cancelled() and loop.time() < state.requeue.when() <= when:
            return
        if state.requeue is not None:
            state.requeue.cancel()
        state.requeue = loop.call_at(when, state.dirty.set)

    async def _revision_loops(self, state: RevisionState) -> None:
        key = _key(state.pa)
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self._scrape_loop(key), name=f"scrape-{key}")
            loops.create_task(self._decide_loop(state), name=f"decide-{key}")
            loops.create_task(self._reconcile_loop(state), name=f"reconcile-{key}")

    async def _scrape_loop(self, key: tuple[str, str]) -> None:
        # Each scrape reports the last whole second and lands in that second's bucket, so
        # scrapes keep to the clock's seconds: one per bucket, no drift, no doubles.
        while True:
            interval = self._scrape_interval
            await asyncio.sleep(interval - self._clock.time() % interval + 0.05)
            with _logged(f"scrape {key}"):
                await self.scrape(key)

    async def _decide_loop(self, state: RevisionState) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.poke.wait(), self._tick_interval)
            state.poke.clear()
            with _logged(f"tick {_key(state.pa)}"):
                await self.tick(_key(state.pa))

    async def _reconcile_loop(self, state: RevisionState) -> None:
        while True:
            await state.dirty.wait()
            with _logged(f"reconcile {_key(state.pa)}"):
                await self.reconcile(_key(state.pa))

    async def _remove(self, key: tuple[str, str]) -> None:
        state = self.revisions.pop(key, None)
        if state is None:
            return
        self._by_revision.pop((state.pa.namespace, state.pa.revision), None)
        if state.requeue is not None:
            state.requeue.cancel()
        if state.task is not None:
            state.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.task

    def _spec(self, pa: PodAutoscaler) -> ScalingSpec:
        return resolve_scaling(
            pa.metadata.annotations or {}, container_concurrency=pa.spec.container_concurrency or 0,
            config=self.config, reachable=pa.reachable,
        )

    def summary(self) -> Iterator[RevisionState]:
        yield from self.revisions.values()

    # --- request metrics ------------------------------------------------------------------------
    def request_summary(self, namespace: str, revision: str, *, since: float, until: float) -> RequestSummary | None:
        """A revision's responses over ``[since, until)``; None for a revision not followed here."""
        key = self._by_revision.get((namespace, revision))
        state = self.revisions.get(key) if key else None
        if state is None:
            return None
        return state.requests.summary(since=since, until=until, now=self._clock.time())

    def namespace_requests(self, namespace: str, *, window: float, series: bool) -> list[RevisionRequests]:
        """Every revision of ``namespace`` over the last ``window`` seconds, with its pods."""
        now = self._clock.time()
        since = now - window
        entries = []
        for state in sorted(self.revisions.values(), key=lambda state: state.pa.revision):
            if state.pa.namespace != namespace:
                continue
            entries.append(
                RevisionRequests(
                    summary=state.requests.summary(since=since, until=now, now=now),
                    desired_pods=state.scaler.status.desired_scale,
                    ready_pods=state.counts.ready if state.counts is not None else None,
                    series=tuple(state.requests.series(since=since, until=now, now=now)) if series else None,
                )
            )
        return entries


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    """Keep a loop alive across one failed step, saying what failed."""
    try:
        yield
    except Exception:
        log.exception("%s failed; trying again on the next round", what)
