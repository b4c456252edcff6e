"""What every part of the node agent shares: the state-directory layout, settings
and the collaborators (API, address table, probe HTTP client, image map).

``StateLayout`` names every file the agent keeps:

    <state>/allocations.json                  pod IPs
    <state>/pods/<uid>/pod.json               namespace and name of the pod
    <state>/pods/<uid>/work/                  default working directory of its containers
    <state>/pods/<uid>/serviceaccount/        token, ca.crt, namespace, kubeconfig
    <state>/pods/<uid>/containers/<name>/     process.json (the live process), last.json
                                              (its last exit), <restartCount>.log

Side effects: ``ImageMapCache`` reads a ConfigMap; the rest only computes paths.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aiohttp

from knserve.clock import Clock
from kube.errors import ApiError
from node.addresses import AllocationStore
from node.api import NodeApi, ServerInfo
from node.images import ImageEntrypoint, parse_map
from node.network import PodNetwork
from node.zygote import Zygote


@dataclasses.dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def allocations(self) -> Path:
        return self.root / "allocations.json"

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    def pod_dir(self, uid: str) -> Path:
        return self.pods / uid

    def pod_record(self, uid: str) -> Path:
        return self.pod_dir(uid) / "pod.json"

    def work_dir(self, uid: str) -> Path:
        return self.pod_dir(uid) / "work"

    def service_account_dir(self, uid: str) -> Path:
        return self.pod_dir(uid) / "serviceaccount"

    def container_dir(self, uid: str, container: str) -> Path:
        return self.pod_dir(uid) / "containers" / container

    def log_file(self, uid: str, container: str, restart_count: int) -> Path:
        return self.container_dir(uid, container) / f"{restart_count}.log"


class ImageMapCache:
    """The image map ConfigMap, parsed, re-read at most every ``max_age`` seconds."""

    def __init__(self, api: NodeApi, *, namespace: str, name: str, clock: Clock, max_age: float = 2.0) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.clock = clock
        self.max_age = max_age
        self._entries: dict[str, ImageEntrypoint] = {}
        self._problems: list[str] = []
        self._read_at: float | None = None

    async def entries(self) -> tuple[dict[str, ImageEntrypoint], list[str]]:
        """Entrypoints by image, and a sentence for each entry that could not be read."""
        now = self.clock.monotonic()
        if self._read_at is None or now - self._read_at > self.max_age:
            try:
                data = await self.api.get_config_map_data(self.namespace, self.name) or {}
            except ApiError:
                return self._entries, self._problems  # keep the last copy; ask again next time
            self._entries, self._problems = parse_map(data)
            self._read_at = now
        return self._entries, self._problems


@dataclasses.dataclass(frozen=True)
class NodeSettings:
    node_name: str
    host_ip: str
    shutdown_grace: float  # cap on each pod's grace period when the agent itself stops
    base_env: dict[str, str]
    bind_pending_pods: bool = True


@dataclasses.dataclass
class NodeContext:
    api: NodeApi
    settings: NodeSettings
    layout: StateLayout
    allocations: AllocationStore
    server: ServerInfo  # as the agent reaches it
    pod_server: ServerInfo  # as pods reach it (through their gateway)
    probe_session: aiohttp.ClientSession
    images: ImageMapCache
    clock: Clock
    network: PodNetwork
    cluster_dns: str | None = None  # the cluster DNS server pods use (None: the host's resolver)
    zygote: Zygote | None = None  # forks knserve's own containers (None: every container is exec'd)
