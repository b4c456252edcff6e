"""One pod on the node: its address, credentials, containers and the status the node writes.

``PodWorker`` gives the pod its IP and network namespace (its own address from the node's
block, or the host's for ``hostNetwork``), writes its service-account credentials, runs its
init containers one after another and then its containers side by side (a
``ContainerSupervisor`` each, all in the pod's namespace, seeing the pod's own
/etc/resolv.conf (cluster DNS, by ``dnsPolicy``) and /etc/hosts and its volumes), and publishes the pod's status
whenever a container changes: changes are coalesced
and written with one strategic-merge patch to ``pods/status`` carrying the pod's UID, so a
successor of the same name is never touched. ``terminate`` stops every container.

Side effects: through its supervisors (processes), the pod network (a namespace), credentials
(token files) and API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kube.errors import ApiError
from node import images
from node.context import NodeContext
from node.dns import resolv_conf
from node.processes import BindMount
from node.security import IdentityRefused, container_identity
from node.status import REASON_POD_INITIALIZING, Terminated, Waiting, build_pod_status
from node.supervisor import ContainerSupervisor
from node.tokens import PodCredentials
from node.volumes import VolumeUnavailable, prepare_volumes

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30.0
STATUS_COALESCE_SECONDS = 0.02


def needs_service_account_token(pod: dict[str, Any]) -> bool:
    """Whether the pod gets credentials: the ServiceAccount admission plugin added a token
    volume (it does unless automounting is turned off), or the pod asks for it explicitly."""
    spec = pod.get("spec") or {}
    for volume in spec.get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("serviceAccountToken") is not None:
                return True
    return spec.get("automountServiceAccountToken") is True


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: dict[str, Any]) -> None:
        self.ctx = ctx
        self.pod = pod
        metadata = pod["metadata"]
        self.uid = str(metadata["uid"])
        self.namespace = str(metadata["namespace"])
        self.name = str(metadata["name"])
        self.key = f"{self.namespace}/{self.name}"
        spec = pod.get("spec") or {}
        self.host_network = bool(spec.get("hostNetwork"))
        self.start_time = ctx.clock.now()
        self._initial_status = pod.get("status") or {}
        ctx.layout.work_dir(self.uid).mkdir(parents=True, exist_ok=True)
        (ctx.layout.pod_record(self.uid)).write_text(
            json.dumps({"namespace": self.namespace, "name": self.name, "uid": self.uid})
        )
        self.network_namespace: Path | None = None
        if self.host_network:
            self.pod_ip = ctx.settings.host_ip
        else:
            self.pod_ip = ctx.allocations.address_for(self.uid)
            self.network_namespace = ctx.network.namespace_path(self.pod_ip)
        self.files = self._write_files(spec)
        self.volumes: dict[str, Path] = {}
        self.credentials: PodCredentials | None = None
        if needs_service_account_token(pod):
            self.credentials = PodCredentials(ctx.api, ctx.pod_server, pod, ctx.layout.service_account_dir(self.uid))
        self.init_supervisors = [ContainerSupervisor(self, c, init=True) for c in spec.get("initContainers") or []]
        self.supervisors = [ContainerSupervisor(self, c) for c in spec.get("containers") or []]
        self.initialized = not self.init_supervisors or self._main_containers_ran_before()
        if not self.initialized:
            for supervisor in self.supervisors:
                supervisor.state = Waiting(REASON_POD_INITIALIZING)
        else:
            for supervisor in self.init_supervisors:
                supervisor.assume_completed()
        self.terminating = False
        self._stopping = asyncio.Event()
        self._dirty = asyncio.Event()
        self._last_written: dict[str, Any] | None = None
        self._gone = False
        self._tasks: list[asyncio.Task[None]] = []
        self._run_task: asyncio.Task[None] | None = None

    def _write_files(self, spec: dict[str, Any]) -> list[BindMount]:
        """The pod's /etc/resolv.conf and /etc/hosts, as the kubelet makes them, written into the
        pod's directory; its containers see them in place of the host's."""
        dns = self.ctx.cluster_dns
        if dns is None:
            return []
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        config = spec.get("dnsConfig") or {}
        resolv: str | None = None
        if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not self.host_network):
            resolv = resolv_conf(dns, self.namespace)
        elif policy == "None":
            lines = [f"nameserver {server}" for server in config.get("nameservers") or []]
            if config.get("searches"):
                lines.insert(0, "search " + " ".join(config["searches"]))
            options = [o["name"] + (f":{o['value']}" if o.get("value") else "") for o in config.get("options") or []]
            if options:
                lines.append("options " + " ".join(options))
            resolv = "\n".join(lines) + "\n"
        directory = self.ctx.layout.pod_dir(self.uid) / "etc"
        directory.mkdir(parents=True, exist_ok=True)
        files: list[BindMount] = []
        if resolv is not None:
            (directory / "resolv.conf").write_text(resolv)
            files.append(BindMount("/etc/resolv.conf", directory / "resolv.conf"))
        if not self.host_network:
            hostname = str(spec.get("hostname") or self.name)
            subdomain = spec.get("subdomain")
            names = f"{hostname}.{subdomain}.{self.namespace}.svc.cluster.local {hostname}" if subdomain else hostname
            hosts = ["# Kubernetes-managed hosts file (knserve node).", "127.0.0.1\tlocalhost",
                     "::1\tlocalhost ip6-localhost ip6-loopback", f"{self.pod_ip}\t{names}"]
            for alias in spec.get("hostAliases") or []:
                hosts.append(f"{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or []))
            (directory / "hosts").write_text("\n".join(hosts) + "\n")
            files.append(BindMount("/etc/hosts", directory / "hosts"))
        return files

    # --- facts the supervisors ask for -----------------------------------------------------------

    def _main_containers_ran_before(self) -> bool:
        return any(s.record_file.exists() or s.last_exit_file.exists() for s in self.supervisors)

    def previous_container_status(self, name: str, *, init: bool = False) -> dict[str, Any]:
        field = "initContainerStatuses" if init else "containerStatuses"
        for status in self._initial_status.get(field) or []:
            if status.get("name") == name:
                return dict(status)
        return {}

    def termination_grace_period(self) -> float:
        value = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(value) if value is not None else DEFAULT_GRACE_SECONDS

    def node_variables(self) -> dict[str, str]:
        """Variables every container of the pod gets before its own ``env``."""
        server = self.ctx.pod_server
        spec = self.pod.get("spec") or {}
        variables = {
            "HOSTNAME": str(spec.get("hostname") or self.name),
            "KUBERNETES_SERVICE_HOST": server.host,
            "KUBERNETES_SERVICE_PORT": str(server.port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(server.port),
            "KUBERNETES_PORT": f"tcp://{server.host}:{server.port}",
            "KNSERVE_POD_IP": self.pod_ip,
        }
        if self.credentials is not None:
            variables["KUBECONFIG"] = str(self.credentials.kubeconfig)
        return variables

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._run_task = asyncio.create_task(self._run(), name=f"pod {self.key}")
        self._tasks.append(asyncio.create_task(self._publish_loop(), name=f"pod status {self.key}"))
        self.notify()

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod

    def notify(self) -> None:
        self._dirty.set()

    async def _retry(self, what: str, attempt: Callable[[], Awaitable[None]],
                     errors: tuple[type[Exception], ...]) -> bool:
        """Run ``attempt`` until it succeeds (True) or the pod stops (False), backing off from
        0.5 s to 10 s between tries."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await attempt()
            except errors as error:
                log.warning("%s: %s (%s); retrying in %.1fs", self.key, what, error, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 10.0)
                continue
            return True
        return False

    async def _credentials_owner(self) -> tuple[int, int] | None:
        """The user the token files belong to: the one every container runs as, when that is
        not root (as a kubelet owns a projected token); else None (root's, mode 0600)."""
        spec = self.pod.get("spec") or {}
        entries, _ = await self.ctx.images.entries()
        owners: set[tuple[int, int]] = set()
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            entry = images.lookup(entries, str(container.get("image", "")))
            try:
                identity = container_identity(self.pod, container, image_user=entry.user if entry is not None else None)
            except IdentityRefused:
                continue
            owners.add((identity.uid, identity.gid) if identity is not None else (0, 0))
        if len(owners) != 1:
            return None
        owner = owners.pop()
        return owner if owner[0] != 0 else None

    async def _prepare_credentials(self) -> bool:
        credentials = self.credentials
        if credentials is None:
            return True
        credentials.owner = await self._credentials_owner()
        if not await self._retry("no service-account token yet", credentials.write, (ApiError, OSError)):
            return False
        self._tasks.append(asyncio.create_task(credentials.keep_fresh(), name=f"token {self.key}"))
        return True

    async def _prepare_volumes(self) -> bool:
        """Make the pod's volumes; retried while a ConfigMap or Secret they need is missing."""
        root = self.ctx.layout.pod_dir(self.uid) / "volumes"
        credentials = self.credentials.directory if self.credentials is not None else None

        async def make() -> None:
            self.volumes = await prepare_volumes(self.ctx.api, self.pod, root, credentials)

        return await self._retry("volumes not ready", make, (VolumeUnavailable, ApiError, OSError))

    async def _prepare_network(self) -> bool:
        """Make the pod's network namespace; retried until it works or the pod stops."""
        return await self._retry("no network namespace yet", lambda: self.ctx.network.attach(self.pod_ip), (OSError,))

    async def _run(self) -> None:
        if not self.host_network and not await self._prepare_network():
            return
        if not await self._prepare_credentials():
            return
        if not await self._prepare_volumes():
            return
        if not self.initialized:
            for supervisor in self.init_supervisors:
                await supervisor.run()
                state = supervisor.state
                if self._stopping.is_set():
                    return
                if not (isinstance(state, Terminated) and state.exit_code == 0):
                    return  # failed for good (restartPolicy Never): the pod is Failed
            self.initialized = True
            self.notify()
        await asyncio.gather(*(supervisor.run() for supervisor in self.supervisors))

    # --- status ----------------------------------------------------------------------------------

    def build_status(self) -> dict[str, Any]:
        init_snapshots = [s.snapshot() for s in self.init_supervisors]
        return build_pod_status(
            self.pod,
            [s.snapshot() for s in self.supervisors],
            pod_ip=self.pod_ip,
            host_ip=self.ctx.settings.host_ip,
            start_time=self.start_time,
            now=self.ctx.clock.now(),
            init_snapshots=init_snapshots,
            initialized=self.initialized,
        )

    async def _publish_loop(self) -> None:
        while not self._gone:
            await self._dirty.wait()
            await asyncio.sleep(STATUS_COALESCE_SECONDS)
            self._dirty.clear()
            await self.publish()

    async def publish(self) -> None:
        status = self.build_status()
        if status == self._last_written:
            return
        try:
            updated = await self.ctx.api.patch_pod_status(
                self.namespace, self.name, {"metadata": {"uid": self.uid}, "status": status}
            )
        except ApiError as error:
            if error.status in (404, 409):
                self._gone = True  # deleted, or replaced by a pod of the same name
                return
            log.warning("%s: writing the status failed, retrying: %s", self.key, error)
            await asyncio.sleep(1.0)
            self.notify()
            return
        self._last_written = status
        self.pod = updated

    # --- stopping --------------------------------------------------------------------------------

    async def terminate(self, grace: float, *, pre_stop: bool = True) -> None:
        """Stop every container (preStop, SIGTERM, SIGKILL after ``grace``) and wait for them."""
        self.terminating = True
        self._stopping.set()
        self.notify()
        supervisors = [*self.init_supervisors, *self.supervisors]
        await asyncio.gather(*(s.stop(grace, pre_stop=pre_stop) for s in supervisors))
        if self._run_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
        for supervisor in supervisors:
            supervisor.remove_cgroups()

    async def close(self) -> None:
        """Cancel the background tasks (status writer, token refresh)."""
        self._gone = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def supervisor(self, name: str) -> ContainerSupervisor | None:
        for supervisor in [*self.supervisors, *self.init_supervisors]:
            if supervisor.name == name:
                return supervisor
        return None
