"""Run one reconcile of one key through the real wiring, against the fake API server.

``reconcile_once(objects, controller, key)`` seeds a ``FakeKubeClient``, builds a
``ControllerApp`` on it (so informers, indexes and wiring are the production ones), lets the
informers list, optionally induces a failure, runs ``reconcile(key)`` once and returns what
happened: the writes, the events, the error and the fake (to read objects back)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

from knserve.clock import FakeClock
from kube.events import RecordingEvents
from kube.fake import FakeKubeClient
from kube.resources import Resource
from serving.app import ControllerApp
from serving.reconciler.route.ingress_state import LatestModelSink
from serving.reconciler.service.metrics_reader import RequestMetricsReader

NOW = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)


@dataclasses.dataclass
class Outcome:
    fake: FakeKubeClient
    events: list[str]
    error: Exception | None
    result: float | None
    sink: LatestModelSink

    def writes(self, verb: str) -> list[str]:
        return [f"{a.resource.plural} {a.namespace}/{a.name}" for a in self.fake.actions if a.verb == verb]

    def get(self, resource: Resource, name: str, namespace: str = "default") -> dict[str, Any]:
        found = self.fake.peek(resource, namespace, name)
        assert found is not None, f"{resource} {namespace}/{name} does not exist"
        return found

    def condition(self, resource: Resource, name: str, condition_type: str) -> tuple[str, str, str] | None:
        for condition in (self.get(resource, name).get("status") or {}).get("conditions") or []:
            if condition["type"] == condition_type:
                return condition["status"], condition.get("reason", ""), condition.get("message", "")
        return None


async def reconcile_once(
    objects: Iterable[tuple[Resource, dict[str, Any]]],
    controller: str,
    key: str,
    *,
    fail: tuple[str, Resource | None, Exception] | None = None,
    now: datetime.datetime = NOW,
    sink: LatestModelSink | None = None,
    request_metrics: RequestMetricsReader | None = None,
) -> Outcome:
    fake = FakeKubeClient(objects)
    events = RecordingEvents()
    sink = sink or LatestModelSink()
    app = ControllerApp(fake, events=events, clock=FakeClock(now), ingress_sink=sink,
                        request_metrics=request_metrics)
    informers = asyncio.create_task(app.informers.run())
    try:
        await app.informers.wait_synced()
        if fail is not None:
            fake.fail_on(*fail)
        error: Exception | None = None
        result: float | None = None
        try:
            result = await app.controller(controller).loop.reconcile(key)
        except Exception as caught:
            error = caught
    finally:
        informers.cancel()
        try:
            await informers
        except asyncio.CancelledError:
            pass
    return Outcome(fake, events.events, error, result, sink)


def assert_status(outcome: Outcome, resource: Resource, name: str, want: dict[str, Any]) -> None:
    """``want`` maps a condition type to (status, reason[, message]) and a field name to its value."""
    for field, expected in want.items():
        if field[0].isupper():
            got = outcome.condition(resource, name, field)
            assert got is not None, f"no {field} condition"
            assert got[: len(expected)] == expected, (field, got)
        else:
            assert (outcome.get(resource, name).get("status") or {}).get(field) == expected, field
