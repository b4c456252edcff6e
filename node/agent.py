"""The node agent: a Node, its Lease, the pods bound to it, and the log endpoint.

``NodeAgent.run`` registers the Node (InternalIP, capacity, ``Ready``, the log endpoint's
port), renews its Lease in ``kube-node-lease`` every 10 s (40 s duration), binds pods that
no scheduler placed to itself (an informer on ``spec.nodeName=``), and keeps an informer on
the pods bound to it (``spec.nodeName=<node>``), starting a ``PodWorker`` for each new one
and terminating those being deleted: preStop, SIGTERM, SIGKILL after the grace period, then
a delete with grace 0 and the pod's UID as precondition. Once the first list is in, it
adopts the processes of pods that still exist and stops those of pods that went while it was
away. On cancellation (SIGTERM to the agent) it stops every pod's processes and leaves the
pods in the API, so the next start runs them again.

Side effects: Node, Lease, Binding, pod status and pod deletions in the API; processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import platform
import ssl
from typing import Any

from kube.errors import ApiError
from kube.informer import Change, Informer
from kube.objects import key_of, name_of, namespace_of, uid_of
from kube.resources import PODS
from node.api import retry_forever
from node.context import NodeContext
from node.logs import LogServer
from node.pod import PodWorker
from node.processes import ContainerProcess, ProcessRecord, read_json
from node.supervisor import remove_tree

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0
NODE_STATUS_REPORT_SECONDS = 60.0
WATCH_TIMEOUT_SECONDS = 300
BIND_RETRY_SECONDS = 1.0
BIND_RETRY_MAX_SECONDS = 10.0
MAX_PODS = 250
KUBELET_VERSION = "v1.37.2"
RUNTIME_VERSION = "knserve://0.1.0"
DEFAULT_SCHEDULER = "default-scheduler"


def _micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _memory_kib() -> int:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 8 * 1024 * 1024


def _read_first_line(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.readline().strip()
    except OSError:
        return ""


def node_status(*, host_ip: str, log_port: int, now: datetime.datetime) -> dict[str, Any]:
    """The Node's status: addresses, capacity, conditions, the log endpoint, node info."""
    capacity = {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{_memory_kib()}Ki",
        "pods": str(MAX_PODS),
        "ephemeral-storage": "100Gi",
    }
    heartbeat = _time(now)

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": heartbeat,
        }

    machine = platform.machine()
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": host_ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}},
        "nodeInfo": {
            "machineID": _read_first_line("/etc/machine-id"),
            "systemUUID": _read_first_line("/etc/machine-id"),
            "bootID": _read_first_line("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": platform.release(),
            "osImage": platform.platform(terse=True),
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
        },
    }


def node_object(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "knserve.dev/node": "true",
            },
        },
        "spec": {},
    }


def wants_binding(pod: dict[str, Any]) -> bool:
    """Whether the binder should place ``pod`` here: on no node, not being deleted, not finished,
    and left to the default scheduler (which does not run)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or metadata.get("deletionTimestamp"):
        return False
    if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _grace_for_deletion(pod: dict[str, Any]) -> float:
    metadata = pod.get("metadata") or {}
    value = metadata.get("deletionGracePeriodSeconds")
    if value is None:
        value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return float(value)


class NodeAgent:
    def __init__(self, ctx: NodeContext, *, log_port: int, log_tls: ssl.SSLContext | None) -> None:
        self.ctx = ctx
        self.name = ctx.settings.node_name
        self.log_server = LogServer(self.find_pod, host=ctx.settings.host_ip, port=log_port, ssl_context=log_tls)
        self.workers: dict[str, PodWorker] = {}  # by pod uid
        self._terminations: dict[str, asyncio.Task[None]] = {}
        self._bindings: dict[str, asyncio.Task[None]] = {}  # by pod uid
        self._node_uid = ""
        self._log_port = 0
        self.pods = Informer(ctx.api.client, PODS, field_selector=f"spec.nodeName={self.name}",
                             watch_timeout_seconds=WATCH_TIMEOUT_SECONDS)
        self.pods.add_handler(self._on_pod_change)
        self.unscheduled: Informer | None = None
        if ctx.settings.bind_pending_pods:
            self.unscheduled = Informer(ctx.api.client, PODS, field_selector="spec.nodeName=",
                                        watch_timeout_seconds=WATCH_TIMEOUT_SECONDS)
            self.unscheduled.add_handler(self._on_unscheduled)

    def find_pod(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.workers.values():
            if worker.namespace == namespace and worker.name == name:
                return worker
        return None

    async def run(self) -> None:
        self._log_port = await self.log_server.start()
        log.info("log endpoint on https://%s:%d", self.ctx.settings.host_ip, self._log_port)
        try:
            await retry_forever("registering the node", self.register)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._lease_loop(), name="node lease")
                tasks.create_task(self._node_status_loop(), name="node status")
                tasks.create_task(self.pods.run(), name="pods on this node")
                tasks.create_task(self._stop_leftovers_once_listed(), name="leftovers")
                if self.unscheduled is not None:
                    tasks.create_task(self.unscheduled.run(), name="binder")
        finally:
            await self.shutdown()

    # --- the Node and its Lease --------------------------------------------------------------------

    async def register(self) -> None:
        node = await self.ctx.api.get_node(self.name)
        if node is None:
            try:
                node = await self.ctx.api.create_node(node_object(self.name))
                log.info("registered node %s", self.name)
            except ApiError as error:
                if error.status != 409:
                    raise
                node = await self.ctx.api.get_node(self.name) or {}
        self._node_uid = str((node.get("metadata") or {}).get("uid", ""))
        await self._report_status()

    async def _report_status(self) -> None:
        status = node_status(host_ip=self.ctx.settings.host_ip, log_port=self._log_port, now=self.ctx.clock.now())
        await self.ctx.api.patch_node_status(self.name, {"status": status})

    async def _node_status_loop(self) -> None:
        while True:
            await asyncio.sleep(NODE_STATUS_REPORT_SECONDS)
            with contextlib.suppress(ApiError, OSError):
                await self._report_status()

    def _lease(self, existing: dict[str, Any] | None) -> dict[str, Any]:
        lease = existing or {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self._node_uid}
                ],
            },
        }
        lease["spec"] = {
            **(lease.get("spec") or {}),
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": _micro_time(self.ctx.clock.now()),
        }
        return lease

    async def renew_lease(self, current: dict[str, Any] | None) -> dict[str, Any]:
        api = self.ctx.api
        if current is None:
            current = await api.get_lease(LEASE_NAMESPACE, self.name)
        if current is None:
            return await api.create_lease(self._lease(None))
        try:
            return await api.replace_lease(self._lease(current))
        except ApiError as error:
            if error.status not in (404, 409):
                raise
            return await self.renew_lease(await api.get_lease(LEASE_NAMESPACE, self.name) or None)

    async def _lease_loop(self) -> None:
        current: dict[str, Any] | None = None
        while True:
            try:
                current = await self.renew_lease(current)
            except (ApiError, OSError) as error:
                log.warning("renewing the node lease failed: %s", error)
                current = None
            await asyncio.sleep(LEASE_RENEW_SECONDS)

    # --- binding pods no scheduler placed --------------------------------------------------------------

    def _on_unscheduled(self, change: Change) -> None:
        pod = change.object
        uid = uid_of(pod)
        if change.kind == "delete" or uid in self._bindings or not wants_binding(pod):
            return
        # Each bind runs on its own, so a burst of new pods (many revisions woken at once) is
        # bound together instead of one API round trip after another.
        binding = asyncio.get_running_loop().create_task(
            self._bind(namespace_of(pod), name_of(pod), uid), name=f"bind {key_of(pod)}"
        )
        self._bindings[uid] = binding
        binding.add_done_callback(lambda _: self._bindings.pop(uid, None))

    async def _bind(self, namespace: str, name: str, uid: str) -> None:
        """Bind the pod to this node; after a failure other than "gone" or "taken" (404, 409), try
        again while the pod still waits for a node (a re-list would not bring it back unchanged)."""
        delay = BIND_RETRY_SECONDS
        while True:
            try:
                await self.ctx.api.bind_pod(namespace, name, uid=uid, node_name=self.name)
                return
            except ApiError as error:
                if error.status in (404, 409):
                    return
                log.warning("binding pod %s/%s failed, retrying in %.0fs: %s", namespace, name, delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BIND_RETRY_MAX_SECONDS)
            pod = self.unscheduled.store.get(namespace, name) if self.unscheduled is not None else None
            if pod is None or uid_of(pod) != uid or not wants_binding(pod):
                return

    # --- the pods on this node ------------------------------------------------------------------------

    def _on_pod_change(self, change: Change) -> None:
        pod = change.object
        uid = uid_of(pod)
        if change.old is not None and uid_of(change.old) != uid:
            self._pod_gone(uid_of(change.old))  # replaced by a pod of the same name while the watch was away
        if change.kind == "delete":
            self._pod_gone(uid)
            return
        metadata = pod.get("metadata") or {}
        worker = self.workers.get(uid)
        deleting = bool(metadata.get("deletionTimestamp"))
        if worker is None:
            if uid in self._terminations:
                return
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") and not self.ctx.layout.pod_dir(uid).exists() and not deleting:
                return  # finished before this agent knew it: nothing to run
            worker = PodWorker(self.ctx, pod)
            self.workers[uid] = worker
            if not deleting:
                worker.start()
        else:
            worker.update(pod)
        if deleting and uid not in self._terminations:
            self._terminations[uid] = asyncio.create_task(
                self._terminate(worker, _grace_for_deletion(pod), delete=True), name=f"terminate {worker.key}"
            )

    def _pod_gone(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is None or uid in self._terminations:
            return
        grace = min(_grace_for_deletion(worker.pod), 2.0)
        self._terminations[uid] = asyncio.create_task(
            self._terminate(worker, grace, delete=False), name=f"terminate {worker.key}"
        )

    async def _terminate(self, worker: PodWorker, grace: float, *, delete: bool) -> None:
        try:
            log.info("stopping pod %s (grace %.0fs)", worker.key, grace)
            await worker.terminate(grace)
            if delete:
                await worker.publish()
                await worker.close()
                await retry_forever(
                    f"deleting pod {worker.key}",
                    lambda: self.ctx.api.delete_pod_now(worker.namespace, worker.name, uid=worker.uid),
                )
            await worker.close()
            if not worker.host_network:
                await self.ctx.network.detach(worker.pod_ip)
            self.ctx.allocations.release(worker.uid)
            remove_tree(self.ctx.layout.pod_dir(worker.uid))
        finally:
            self.workers.pop(worker.uid, None)
            self._terminations.pop(worker.uid, None)

    def _known_pods(self) -> set[str]:
        """The uids of the pods this agent runs or sees bound to its node."""
        return set(self.workers) | {uid_of(pod) for pod in self.pods.store.list()}

    async def _stop_leftovers_once_listed(self) -> None:
        await self.pods.wait_synced()
        await self._stop_leftovers()

    async def _stop_leftovers(self) -> None:
        """Stop processes of pods that were deleted while the agent was away; forget them. (Pods
        that arrive meanwhile have workers, so they are known and left alone.)"""
        pods_dir = self.ctx.layout.pods
        known = self._known_pods()
        leftovers = [path for path in pods_dir.iterdir() if path.name not in known] if pods_dir.exists() else []
        stops = []
        for pod_dir in leftovers:
            for record_file in pod_dir.glob("containers/*/process.json"):
                raw = read_json(record_file)
                if raw is None:
                    continue
                record = ProcessRecord.from_json(raw)
                if record.still_running():
                    log.info("stopping pid %d left by deleted pod %s", record.pid, pod_dir.name)
                    stops.append(ContainerProcess(record.pid).stop(2.0))
        await asyncio.gather(*stops)
        for pod_dir in leftovers:
            remove_tree(pod_dir)
        for uid in self.ctx.allocations.known_pods() - self._known_pods():
            self.ctx.allocations.release(uid)
        await self.ctx.network.sync(self.ctx.allocations.addresses())

    # --- shutdown ------------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop every pod's processes (SIGTERM, then SIGKILL); leave the pods in the API. (The
        caller then removes the pod network; the next start makes it again, same IPs.)"""
        workers = list(self.workers.values())
        for task in [*self._terminations.values(), *self._bindings.values()]:
            task.cancel()
        for worker in workers:
            await worker.close()
        cap = self.ctx.settings.shutdown_grace
        await asyncio.gather(
            *(w.terminate(min(w.termination_grace_period(), cap), pre_stop=False) for w in workers),
            return_exceptions=True,
        )
        await self.log_server.stop()
        log.info("node agent stopped (%d pods' processes stopped)", len(workers))
