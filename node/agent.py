"""The node agent: a Node, its Lease, the pods bound to it, and the log endpoint.

``NodeAgent.run`` registers the Node (InternalIP, capacity, ``Ready``, the log endpoint's
port), renews its Lease in ``kube-node-lease`` every 10 s (40 s duration), binds pods that
no scheduler placed to itself, and watches the pods bound to it (``spec.nodeName``),
starting a ``PodWorker`` for each new one and terminating those being deleted: preStop,
SIGTERM, SIGKILL after the grace period, then a delete with grace 0 and the pod's UID as
precondition. After a restart it adopts the processes of pods that still exist and stops
those of pods that are gone. On cancellation (SIGTERM to the agent) it stops every pod's
processes and leaves the pods in the API, so the next start runs them again.

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

from node.api import ApiError, Gone, retry_forever
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
        self.workers: dict[str, PodWorker] = {}
        self._terminations: dict[str, asyncio.Task[None]] = {}
        self._bindings: set[asyncio.Task[None]] = set()
        self._node_uid = ""
        self._log_port = 0
        self._adopted_leftovers = False

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
                tasks.create_task(self._pod_loop(), name="pods on this node")
                if self.ctx.settings.bind_pending_pods:
                    tasks.create_task(self._bind_loop(), name="binder")
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
            return await api.create_lease(LEASE_NAMESPACE, self._lease(None))
        try:
            return await api.replace_lease(LEASE_NAMESPACE, self.name, self._lease(current))
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

    async def _bind(self, pod: dict[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or metadata.get("deletionTimestamp"):
            return
        if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        try:
            await self.ctx.api.bind_pod(
                metadata["namespace"], metadata["name"], uid=metadata.get("uid", ""), node_name=self.name
            )
        except ApiError as error:
            if error.status not in (404, 409):
                log.warning("binding pod %s/%s failed: %s", metadata.get("namespace"), metadata.get("name"), error)

    async def _bind_loop(self) -> None:
        await self._watch_loop("spec.nodeName=", self._on_unscheduled, None)

    async def _on_unscheduled(self, kind: str, pod: dict[str, Any]) -> None:
        # Each bind runs on its own, so a burst of new pods (many revisions woken at once) is
        # bound together instead of one API round trip after another.
        if kind in ("ADDED", "MODIFIED"):
            binding = asyncio.get_running_loop().create_task(
                self._bind(pod), name=f"bind {(pod.get('metadata') or {}).get('name')}"
            )
            self._bindings.add(binding)
            binding.add_done_callback(self._bindings.discard)

    # --- the pods on this node ------------------------------------------------------------------------

    async def _pod_loop(self) -> None:
        await self._watch_loop(f"spec.nodeName={self.name}", self._on_pod_event, self._on_pod_list)

    async def _watch_loop(self, field_selector: str, on_event: Any, on_list: Any) -> None:
        """List, then watch from the list's version; list again on 410 Gone or errors."""
        api = self.ctx.api
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    items, resource_version = await api.list_pods(field_selector=field_selector)
                    if on_list is not None:
                        await on_list(items)
                    else:
                        for item in items:
                            await self._deliver(on_event, "ADDED", item)
                async for event in api.watch_pods(
                    field_selector=field_selector, resource_version=resource_version, timeout_seconds=WATCH_TIMEOUT_SECONDS
                ):
                    version = (event.object.get("metadata") or {}).get("resourceVersion")
                    if version:
                        resource_version = str(version)
                    if event.type == "BOOKMARK":
                        continue
                    await self._deliver(on_event, event.type, event.object)
            except Gone:
                resource_version = ""
            except (ApiError, OSError, asyncio.TimeoutError, ValueError) as error:
                log.warning("watching pods (%s) failed, listing again: %s", field_selector, error)
                resource_version = ""
                await asyncio.sleep(1.0)
            except Exception as error:  # aiohttp.ClientError and friends
                log.warning("watching pods (%s) broke, listing again: %s", field_selector, error)
                resource_version = ""
                await asyncio.sleep(1.0)

    @staticmethod
    async def _deliver(on_event: Any, kind: str, pod: dict[str, Any]) -> None:
        try:
            await on_event(kind, pod)
        except Exception:
            metadata = pod.get("metadata") or {}
            log.exception("handling %s of pod %s/%s failed", kind, metadata.get("namespace"), metadata.get("name"))

    async def _on_pod_list(self, pods: list[dict[str, Any]]) -> None:
        listed = {str(p["metadata"]["uid"]) for p in pods}
        for uid in list(self.workers):
            if uid not in listed:
                self._pod_gone(uid)
        for pod in pods:
            await self._deliver(self._on_pod_event, "ADDED", pod)
        if not self._adopted_leftovers:
            self._adopted_leftovers = True
            await self._stop_leftovers(listed)

    async def _on_pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        uid = str(metadata.get("uid", ""))
        if kind == "DELETED":
            self._pod_gone(uid)
            return
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

    async def _stop_leftovers(self, listed: set[str]) -> None:
        """Stop processes of pods that were deleted while the agent was away; forget them."""
        pods_dir = self.ctx.layout.pods
        leftovers = [path for path in pods_dir.iterdir() if path.name not in listed] if pods_dir.exists() else []
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
        for uid in self.ctx.allocations.known_pods() - listed:
            self.ctx.allocations.release(uid)
        await self.ctx.network.sync(self.ctx.allocations.addresses())

    # --- shutdown ------------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop every pod's processes (SIGTERM, then SIGKILL); leave the pods in the API. (The
        caller then removes the pod network; the next start makes it again, same IPs.)"""
        workers = list(self.workers.values())
        for task in [*self._terminations.values(), *self._bindings]:
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
