"""Kubernetes Events for what the controller did: "Created", "Updated", "InternalError" ...

``EventRecorder.event`` is fire-and-forget (reconcilers never wait on it nor fail
because of it); repeated identical events on the same object are sent once per
``dedup_seconds``. ``RecordingEvents`` keeps them in a list for tests.

Side effects: creates core/v1 Events through the ``KubeClient`` in background tasks.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
import uuid
from typing import Protocol

from kube.client import KubeClient
from kube.objects import JSON
from kube.resources import EVENTS

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


class EventSink(Protocol):
    def event(self, obj: JSON, event_type: str, reason: str, message: str) -> None: ...


class RecordingEvents:
    """Events as ``"<type> <reason> <message>"`` strings, for table tests."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def event(self, obj: JSON, event_type: str, reason: str, message: str) -> None:
        self.events.append(f"{event_type} {reason} {message}")


class EventRecorder:
    def __init__(self, client: KubeClient, *, component: str = "knserve-controller",
                 dedup_seconds: float = 60.0) -> None:
        self._client = client
        self._component = component
        self._dedup_seconds = dedup_seconds
        self._recent: dict[tuple[str, str, str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, obj: JSON, event_type: str, reason: str, message: str) -> None:
        metadata = obj.get("metadata", {})
        dedup_key = (str(metadata.get("uid")), event_type, reason, message)
        now = time.monotonic()
        if now - self._recent.get(dedup_key, -1e9) < self._dedup_seconds:
            return
        self._recent[dedup_key] = now
        if len(self._recent) > 10_000:
            self._recent = {k: v for k, v in self._recent.items() if now - v < self._dedup_seconds}
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = metadata.get("namespace") or "default"
        body: JSON = {
            "metadata": {"name": f"{metadata.get('name')}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": metadata.get("name"),
                "namespace": namespace, "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": event_type, "reason": reason, "message": message[:1024],
            "source": {"component": self._component},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        try:
            task = asyncio.get_running_loop().create_task(self._send(body), name=f"event:{reason}")
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, body: JSON) -> None:
        try:
            await self._client.create(EVENTS, body)
        except Exception as error:  # events are best effort
            log.debug("could not record event %s: %s", body.get("reason"), error)
