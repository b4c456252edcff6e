"""What the activator knows about revisions, and the boundary it learns it through.

``RevisionInfo`` carries what the activator needs from a Revision object
(``containerConcurrency``, ``timeoutSeconds``, ``responseStartTimeoutSeconds``,
``idleTimeoutSeconds``), read through the API layer's ``Revision`` model as the controller
reads it; ``Endpoints`` the revision's pod addresses
(``ip:port`` of the queue-proxy), split into those Kubernetes calls ready and those it does
not yet (the activator probes the latter itself and uses them as soon as a probe passes).

``RevisionSource`` is the boundary Protocol: something that watches the cluster and feeds a
``RevisionSink`` until cancelled. A Kubernetes implementation watches Revisions
(``serving.knative.dev/v1``) and the EndpointSlices of each revision's Service (label
``kubernetes.io/service-name``, not-ready addresses included) or the pods labelled
``serving.knative.dev/revision``. ``StaticRevisionSource`` is the in-package fake, also used
by ``knserve activator --static FILE``.

No I/O except ``StaticRevisionSource.from_file`` reading its file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from knserve.networking import CONFIGURATION_LABEL, QUEUE_HTTP_PORT, SERVICE_LABEL
from serving.apis.v1 import Revision, RevisionSpec

DEFAULT_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    namespace: str
    name: str
    container_concurrency: int = 0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    response_start_timeout_seconds: float = 0.0  # 0: none; else until the response starts
    idle_timeout_seconds: float = 0.0  # 0: none; else longest silence while the response streams
    service: str = ""  # the Revision's serving.knative.dev/service label ("" when none), for metrics
    configuration: str = ""  # its serving.knative.dev/configuration label

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> RevisionInfo:
        """Read a Revision as the API server returns it (a JSON object)."""
        revision = Revision.model_validate(obj)
        info = cls.from_spec(revision.namespace or "default", revision.name, revision.spec)
        labels = revision.metadata.labels or {}
        service, configuration = labels.get(SERVICE_LABEL, ""), labels.get(CONFIGURATION_LABEL, "")
        return replace(info, service=service, configuration=configuration) if service or configuration else info

    @classmethod
    def from_spec(cls, namespace: str, name: str, spec: RevisionSpec | Mapping[str, Any]) -> RevisionInfo:
        """From a Revision spec, or its camelCase fields (the ``--static`` file's)."""
        if not isinstance(spec, RevisionSpec):
            spec = RevisionSpec.model_validate(spec)
        return cls(
            namespace=namespace,
            name=name,
            container_concurrency=spec.get_container_concurrency(),
            timeout_seconds=float(spec.timeout_seconds or DEFAULT_TIMEOUT_SECONDS),
            response_start_timeout_seconds=float(spec.response_start_timeout_seconds or 0.0),
            idle_timeout_seconds=float(spec.idle_timeout_seconds or 0.0),
        )


def pod_dest(address: str, port: int = QUEUE_HTTP_PORT) -> str:
    """``ip:port`` for a pod address; an address that already names a port keeps it."""
    if address.startswith("["):
        return address if "]:" in address else f"{address}:{port}"
    if address.count(":") == 1:
        return address
    if ":" in address:  # bare IPv6
        return f"[{address}]:{port}"
    return f"{address}:{port}"


@dataclass(frozen=True, slots=True)
class Endpoints:
    ready: frozenset[str] = field(default_factory=frozenset)
    not_ready: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, ready: Sequence[str] = (), not_ready: Sequence[str] = ()) -> Endpoints:
        return cls(frozenset(map(pod_dest, ready)), frozenset(map(pod_dest, not_ready)) - frozenset(map(pod_dest, ready)))


class RevisionSink(Protocol):
    def upsert_revision(self, revision: RevisionInfo) -> None: ...

    def delete_revision(self, namespace: str, name: str) -> None: ...

    def set_endpoints(self, namespace: str, name: str, endpoints: Endpoints) -> None: ...


class RevisionSource(Protocol):
    async def run(self, sink: RevisionSink) -> None:
        """Feed ``sink`` with the cluster's revisions and endpoints until cancelled."""
        ...


class StaticRevisionSource:
    """A fixed set of revisions and endpoints: the fake cluster of tests and ``--static``."""

    def __init__(
        self,
        revisions: Sequence[RevisionInfo] = (),
        endpoints: Mapping[tuple[str, str], Endpoints] | None = None,
    ) -> None:
        self.revisions = list(revisions)
        self.endpoints = dict(endpoints or {})

    async def run(self, sink: RevisionSink) -> None:
        for revision in self.revisions:
            sink.upsert_revision(revision)
        for (namespace, name), endpoints in self.endpoints.items():
            sink.set_endpoints(namespace, name, endpoints)
        await asyncio.Event().wait()

    @classmethod
    def from_file(cls, path: str | Path) -> StaticRevisionSource:
        """Read revisions from YAML or JSON::

            revisions:
              - {namespace: default, name: hello-00001, containerConcurrency: 1,
                 timeoutSeconds: 300, responseStartTimeoutSeconds: 10, idleTimeoutSeconds: 60,
                 ready: ["127.0.0.5:8012"], notReady: []}
        """
        text = Path(path).read_text()
        document = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        entries = (document or {}).get("revisions") or []
        revisions, endpoints = [], {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not entry.get("name"):
                raise ValueError(f"{path}: revisions[{index}] needs at least a name")
            revision = RevisionInfo.from_spec(str(entry.get("namespace", "default")), str(entry["name"]), entry)
            revisions.append(revision)
            endpoints[revision.key] = Endpoints.of(entry.get("ready") or (), entry.get("notReady") or ())
        return cls(revisions, endpoints)
