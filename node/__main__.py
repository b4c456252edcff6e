"""``knserve node``: run the node agent (a kubelet whose containers are processes).

    knserve node --kubeconfig ADMIN_KUBECONFIG --name knserve-node --state-dir DIR

Parses flags, claims an address block and sets up the pod network (a bridge; needs root),
connects to the API server, builds the agent and runs it until SIGTERM or SIGINT, which
stops every pod's processes, removes the pod network and leaves the pods in the API. With a
bridge, pods also get Service IPs (``services.ServiceProxy``) and cluster DNS on the gateway
(``dns.ClusterDnsServer``, port 53), as kube-proxy and CoreDNS give them on a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import ssl
import sys
from pathlib import Path

from knserve.clock import SystemClock
from kube.client import KubeClient, connect
from kube.errors import ApiError
from node.addresses import HOST_IP, AllocationStore, saved_block
from node.agent import NodeAgent
from node.api import NodeApi, ServerInfo
from node.context import ImageMapCache, NodeContext, NodeSettings, StateLayout
from node.dns import ClusterDnsServer
from node.handlers import probe_session
from node.images import IMAGE_MAP_NAME, IMAGE_MAP_NAMESPACE
from node.logs import serving_certificate
from node.network import (
    DEFAULT_POD_NETWORK,
    LOOPBACK_POD_NETWORK,
    BridgeNetwork,
    LoopbackRange,
    PodNetwork,
    can_manage_network,
    claim_block,
    remove_orphaned_networks,
)
from node.services import ServiceProxy
from node.zygote import Zygote

# The process environment a container starts from (an image would bring its own PATH etc).
DNS_PORT = 53
FIELD_MANAGER = "knserve-node"
API_WRITES_IN_FLIGHT = 32  # pod status writes of a burst of new pods go out together
API_REQUEST_TIMEOUT = 30.0
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve node", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig with rights to nodes, pods, leases, tokens")
    parser.add_argument("--name", default="knserve-node", help="the Node's name (default: knserve-node)")
    parser.add_argument("--state-dir", required=True, type=Path, help="where pod addresses, records and logs live")
    parser.add_argument(
        "--host-ip",
        help="the node's InternalIP and hostNetwork pods' IP (default: the pod network's gateway, "
        f"or {HOST_IP} with loopback pod IPs)",
    )
    parser.add_argument(
        "--port", "--log-port", dest="log_port", type=int, default=0,
        help="port of the kubelet (log) endpoint (default: any free port)",
    )
    parser.add_argument("--tls-cert-file", type=Path, help="serving certificate of the log endpoint (PEM)")
    parser.add_argument("--tls-private-key-file", type=Path, help="its key (default: a self-signed pair is made)")
    parser.add_argument(
        "--client-ca-file", type=Path,
        help="require callers of the log endpoint (the API server) to present a certificate from this CA",
    )
    parser.add_argument(
        "--image-map", default=f"{IMAGE_MAP_NAMESPACE}/{IMAGE_MAP_NAME}",
        help="namespace/name of the ConfigMap mapping images to command lines",
    )
    parser.add_argument(
        "--shutdown-grace-period", type=float, default=10.0,
        help="longest grace period given to each pod when the agent stops (seconds)",
    )
    parser.add_argument(
        "--pod-network", default="auto",
        help="where pod IPs come from: a CIDR (a bridge and a network namespace per pod, needs "
        "CAP_NET_ADMIN), 'loopback' (127.0.x.y in the host's namespace: no setup, but pods share ports and "
        f"Services get no endpoints), or 'auto' ({DEFAULT_POD_NETWORK} when permitted, else loopback)",
    )
    parser.add_argument(
        "--bind-pending-pods", action=argparse.BooleanOptionalAction, default=True,
        help="bind pods no scheduler placed to this node (default: on; turn off when a scheduler runs)",
    )
    parser.add_argument(
        "--zygote", action=argparse.BooleanOptionalAction, default=True,
        help="fork knserve's own containers (the queue-proxy) from a pre-imported Python instead of "
             "exec'ing each (default: on)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


log = logging.getLogger("node")


def pod_network(setting: str) -> tuple[ipaddress.IPv4Network, bool]:
    """The range pod IPs come from, and whether pods get their own network namespaces."""
    if setting == "loopback":
        return LOOPBACK_POD_NETWORK, False
    if setting == "auto":
        if can_manage_network():
            return DEFAULT_POD_NETWORK, True
        log.warning(
            "this process may not create network namespaces (no CAP_NET_ADMIN), so pods get 127.0.x.y "
            "addresses in the host's namespace: they run and answer, but two pods cannot use the same port, "
            "and the API server refuses loopback addresses in EndpointSlices, so Services will have no "
            "endpoints. Run the node agent as root for pod networks in %s.", DEFAULT_POD_NETWORK,
        )
        return LOOPBACK_POD_NETWORK, False
    network = ipaddress.IPv4Network(setting)
    if network.is_loopback:
        return network, False
    if not can_manage_network():
        raise SystemExit(f"the local node agent needs root to create pod network namespaces (--pod-network="
                         f"{setting}); run it as root or use --pod-network=loopback.")
    return network, True


def _is_local(host: str) -> bool:
    """Whether the API server's address only works on this host (so pods need another)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run(args: argparse.Namespace) -> None:
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    layout = StateLayout(state_dir)
    layout.pods.mkdir(exist_ok=True)
    clock = SystemClock()
    network_range, namespaces = pod_network(args.pod_network)
    block, block_lock = claim_block(network_range, preferred=saved_block(layout.allocations))
    allocations = AllocationStore(layout.allocations, block=block)
    network: PodNetwork = BridgeNetwork(block) if namespaces else LoopbackRange()
    try:
        await network.setup(allocations.addresses())
        if namespaces:
            await remove_orphaned_networks(network_range, own=block)
    except OSError as error:
        block_lock.close()
        raise SystemExit(f"the local node agent could not set up the pod network: {error}") from None
    host_ip = args.host_ip or network.gateway or HOST_IP
    log.info("pod IPs from %s%s", block, f" (bridge gateway {network.gateway})" if network.gateway else "")
    try:
        await _serve(args, state_dir=state_dir, layout=layout, allocations=allocations, network=network,
                     host_ip=host_ip, clock=clock)
    finally:
        await network.teardown()
        block_lock.close()


async def _serve(
    args: argparse.Namespace, *, state_dir: Path, layout: StateLayout, allocations: AllocationStore,
    network: PodNetwork, host_ip: str, clock: SystemClock,
) -> None:
    try:
        client = await connect(args.kubeconfig, field_manager=FIELD_MANAGER, max_writes_in_flight=API_WRITES_IN_FLIGHT,
                               request_timeout=API_REQUEST_TIMEOUT)
    except ApiError as error:
        raise SystemExit(f"knserve node: {error}") from None
    api = NodeApi(client)
    cert, key = args.tls_cert_file, args.tls_private_key_file
    if cert is None or key is None:
        cert, key = serving_certificate(state_dir / "pki", args.name, host_ip)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    if args.client_ca_file is not None:
        tls.load_verify_locations(cafile=str(args.client_ca_file))
        tls.verify_mode = ssl.CERT_REQUIRED
    server = ServerInfo.of(client)
    image_namespace, _, image_name = args.image_map.partition("/")
    settings = NodeSettings(
        node_name=args.name,
        host_ip=host_ip,
        shutdown_grace=args.shutdown_grace_period,
        bind_pending_pods=args.bind_pending_pods,
        base_env={name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ},
    )
    zygote = Zygote() if args.zygote else None
    if zygote is not None:
        zygote.start()
    try:
        async with probe_session() as session:
            ctx = NodeContext(
                api=api,
                settings=settings,
                layout=layout,
                allocations=allocations,
                server=server,
                pod_server=server.reached_at(network.gateway) if network.gateway and _is_local(server.host) else server,
                probe_session=session,
                images=ImageMapCache(api, namespace=image_namespace, name=image_name, clock=clock),
                clock=clock,
                network=network,
                zygote=zygote,
            )
            agent = NodeAgent(ctx, log_port=args.log_port, log_tls=tls)
            if isinstance(network, BridgeNetwork) and network.gateway:
                await _serve_with_service_network(ctx, network, client, server, agent)
            else:
                await agent.run()
    finally:
        if zygote is not None:
            zygote.stop()
        await client.close()


async def _run_both(agent: NodeAgent, proxy: ServiceProxy) -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(agent.run(), name="node agent")
        group.create_task(proxy.run(), name="service proxy")


async def _serve_with_service_network(ctx: NodeContext, network: BridgeNetwork, client: KubeClient,
                                      server: ServerInfo, agent: NodeAgent) -> None:
    """Run the agent with Service IPs and cluster DNS (on the gateway) for its pods."""
    assert network.gateway is not None
    proxy = ServiceProxy(client, bridge=network.bridge, api_server=server)
    dns = ClusterDnsServer((network.gateway, DNS_PORT), proxy.record)
    try:
        await dns.start()
    except OSError as error:
        log.warning("no cluster DNS for pods (%s:%d: %s); they use the host's resolver", network.gateway, DNS_PORT,
                    error)
        await _run_both(agent, proxy)
        return
    ctx.cluster_dns = network.gateway
    log.info("cluster DNS for pods on %s:%d; Service IPs on %s", network.gateway, DNS_PORT, network.bridge)
    try:
        await _run_both(agent, proxy)
    finally:
        await dns.close()
        await proxy.close()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await run(args)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
