"""The snapshot cache: the latest snapshot per group of Envoys, and where each Envoy is with it.

Cut like go-control-plane's ``pkg/cache/v3``: the writer (``XdsController``) sets a snapshot
for a *group* (Envoys that should run the same config; by default all Envoys with the same
bootstrap ``node.cluster``), and the ADS server, knowing only this cache, opens a
:class:`NodeSession` per stream. Every Envoy (node id) gets its own :class:`NodeSequencer`, so
the make-before-break order follows that Envoy's own ACKs. Whenever what a node is offered
may have changed, the cache calls the wake callbacks of that node's open streams; whenever a
node's progress changes (connect, ACK, NACK, disconnect), it calls the status observers.

Plain synchronous object, meant to be used from one event loop thread; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from serving.xds import type_urls
from serving.xds.sequencer import NodeSequencer, Rejection, Stage
from serving.xds.snapshot import ResourceSet, Snapshot


@dataclasses.dataclass(frozen=True, slots=True)
class NodeInfo:
    """Who is on the other end of a stream: the bootstrap ``node.id`` and ``node.cluster``."""

    id: str
    cluster: str


def group_by_cluster(node: NodeInfo) -> str:
    """Envoys with the same ``node.cluster`` run the same config (replicas of one ingress)."""
    return node.cluster


@dataclasses.dataclass(frozen=True, slots=True)
class NodeStatus:
    """Where one Envoy is: for readiness, for ``knserve`` status output, and for tests."""

    node: NodeInfo
    group: str
    connected: bool
    stage: Stage
    target_version: int
    """The snapshot this Envoy is moving to (0: none yet)."""
    served_version: int
    """The newest snapshot whose routes this Envoy ACKed (0: none yet)."""
    acked: dict[str, str]
    """ACKed resource set version per type URL."""
    rejection: Rejection | None
    """Envoy's refusal that stops it short of ``target_version``; it serves its last good config."""
    last_rejection: Rejection | None


class NodeSession(Protocol):
    """What the ADS server may do for one stream: read offers, report ACKs and NACKs."""

    def offered(self, type_url: str) -> ResourceSet | None: ...
    def is_rejected(self, type_url: str, version: str) -> bool: ...
    def ack(self, type_url: str, accepted: ResourceSet) -> None: ...
    def nack(self, type_url: str, refused: ResourceSet, message: str) -> Rejection: ...
    def close(self) -> None: ...


class Cache(Protocol):
    """The one thing the ADS server knows."""

    def open(self, node: NodeInfo, wake: Callable[[], None], *, fresh: bool = False) -> NodeSession: ...


class _Node:
    def __init__(self, info: NodeInfo, group: str) -> None:
        self.info = info
        self.group = group
        self.sequencer = NodeSequencer()
        self.wakers: list[Callable[[], None]] = []


class _Session:
    def __init__(self, cache: SnapshotCache, node: _Node, wake: Callable[[], None]) -> None:
        self._cache = cache
        self._node = node
        self._wake = wake
        self._closed = False

    def offered(self, type_url: str) -> ResourceSet | None:
        return self._node.sequencer.offered(type_url)

    def is_rejected(self, type_url: str, version: str) -> bool:
        return self._node.sequencer.is_rejected(type_url, version)

    def ack(self, type_url: str, accepted: ResourceSet) -> None:
        self._node.sequencer.ack(type_url, accepted)
        self._cache._changed(self._node)

    def nack(self, type_url: str, refused: ResourceSet, message: str) -> Rejection:
        rejection = self._node.sequencer.nack(type_url, refused, message)
        self._cache._changed(self._node)
        return rejection

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._node.wakers.remove(self._wake)
            self._cache._closed(self._node)


class SnapshotCache:
    """Latest snapshot per group; a sequencer per node; wakes streams and status observers.

    A node that disconnects keeps its progress (a reconnecting Envoy still runs that config),
    but only the ``keep_disconnected`` most recent ones are kept: Envoy pods come and go.
    """

    def __init__(self, *, group_of: Callable[[NodeInfo], str] = group_by_cluster, keep_disconnected: int = 16) -> None:
        self._group_of = group_of
        self._keep_disconnected = keep_disconnected
        self._snapshots: dict[str, Snapshot] = {}
        self._nodes: dict[str, _Node] = {}
        self._disconnected: dict[str, None] = {}  # node ids, oldest first
        self._observers: list[Callable[[NodeStatus], None]] = []

    # --- the writer's side -----------------------------------------------------------------------

    def set_snapshot(self, group: str, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the config of every Envoy in ``group``, now and when they connect."""
        self._snapshots[group] = snapshot
        for node in self._nodes.values():
            if node.group == group:
                node.sequencer.set_target(snapshot)
                self._changed(node)

    def snapshot(self, group: str) -> Snapshot | None:
        return self._snapshots.get(group)

    def statuses(self, group: str | None = None) -> list[NodeStatus]:
        return [self._status(node) for node in self._nodes.values() if group is None or node.group == group]

    def add_observer(self, observer: Callable[[NodeStatus], None]) -> Callable[[], None]:
        """Call ``observer`` whenever a node's progress changes; returns the way to stop."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    # --- the server's side -----------------------------------------------------------------------

    def open(self, node: NodeInfo, wake: Callable[[], None], *, fresh: bool = False) -> NodeSession:
        """A stream from ``node`` started; ``wake`` is called when its offers may have changed.

        ``fresh``: the Envoy has no config at all (a new process under a known node id), so
        what the node acknowledged before counts no more and it starts from the beginning.
        """
        known = self._nodes.get(node.id)
        if known is None or known.info != node or fresh:
            known = _Node(node, self._group_of(node))
            self._nodes[node.id] = known
            snapshot = self._snapshots.get(known.group)
            if snapshot is not None:
                known.sequencer.set_target(snapshot)
        known.wakers.append(wake)
        self._disconnected.pop(node.id, None)
        self._notify(known)
        return _Session(self, known, wake)

    # --- internals -------------------------------------------------------------------------------

    def _closed(self, node: _Node) -> None:
        self._notify(node)
        if node.wakers or self._nodes.get(node.info.id) is not node:
            return
        self._disconnected[node.info.id] = None
        while len(self._disconnected) > self._keep_disconnected:
            oldest = next(iter(self._disconnected))
            del self._disconnected[oldest]
            del self._nodes[oldest]

    def _changed(self, node: _Node) -> None:
        for wake in list(node.wakers):
            wake()
        self._notify(node)

    def _notify(self, node: _Node) -> None:
        status = self._status(node)
        for observer in list(self._observers):
            observer(status)

    def _status(self, node: _Node) -> NodeStatus:
        sequencer = node.sequencer
        acked = {
            type_url: version
            for type_url in type_urls.ADS_ORDER
            if (version := sequencer.acked_version(type_url)) is not None
        }
        return NodeStatus(
            node=node.info,
            group=node.group,
            connected=bool(node.wakers),
            stage=sequencer.stage,
            target_version=sequencer.target.version if sequencer.target is not None else 0,
            served_version=sequencer.served_version,
            acked=acked,
            rejection=sequencer.blocking_rejection(),
            last_rejection=sequencer.last_rejection,
        )
