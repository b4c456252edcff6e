"""``knserve local``: run a real single-node Kubernetes with knserve on this machine.

    knserve local up [--reset]   start everything in the background; returns once healthy
        [--runtime containerd]   real nodes (kubelet + containerd) in place of the process node
        [--nodes N]              how many containerd nodes (default 1)
    knserve local down           stop every process ``up`` started (objects are kept)
        [--remove-routes]        also remove the host's 'unreachable' routes for the cluster's
                                 ranges, unless another local cluster still runs
    knserve local status         what runs, with pids and logs
    knserve local kubeconfig     print the admin kubeconfig's path

Side effects: builds the control-plane binaries on first use, starts and stops processes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from localcluster import baseimages, nodeimages, nodesetup, processes, realcluster
from localcluster import binaries as binaries_module
from localcluster.controlplane import LocalCluster, default_state_dir
from localcluster.processes import StartError
from localcluster.stack import LocalStack


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _cluster(args: argparse.Namespace) -> LocalCluster:
    return LocalCluster(Path(args.state_dir), binaries_module.binaries())


def _containerd_cluster(args: argparse.Namespace) -> realcluster.ContainerdCluster:
    control_plane = realcluster.RealNodesControlPlane(Path(args.state_dir), binaries_module.binaries())
    return realcluster.ContainerdCluster.existing(control_plane, binaries_module.node_binaries())


def up_containerd(args: argparse.Namespace) -> int:
    """The control plane, kube-scheduler and ``--nodes`` containerd nodes."""
    began = time.monotonic()
    try:
        nodesetup.ensure_packages(progress=_say)
        found = binaries_module.ensure_binaries(progress=_say)
        node_binaries = binaries_module.ensure_node_binaries(progress=_say)
    except (nodesetup.SetupError, binaries_module.BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    control_plane = realcluster.RealNodesControlPlane(Path(args.state_dir), found)
    if args.reset:
        _say("removing the old cluster's data (--reset)")
        realcluster.ContainerdCluster.existing(control_plane, node_binaries).stop(progress=_say)
        control_plane.reset()
    if processes.stop(control_plane.node_spec()):
        _say("stopped the process node: this cluster now runs containerd nodes")
    real = realcluster.ContainerdCluster(control_plane, node_binaries, nodes=args.nodes)
    try:
        real.start(progress=_say)
    except StartError as error:
        print(f"error: {error}", file=sys.stderr)
        _say(f"stopping what had started (its logs stay in {control_plane.state_dir / 'logs'})")
        real.stop(progress=_say)
        return 1
    _say(f"Kubernetes {binaries_module.KUBERNETES_VERSION} with {args.nodes} containerd node(s) ready in "
         f"{time.monotonic() - began:.1f}s")
    try:
        real.start_addons(progress=_say)
        real.install_knserve(Path(__file__).resolve().parent.parent, progress=_say)
    except (StartError, nodeimages.ImageBuildError, baseimages.BaseImageError) as error:
        print(f"error: {error}", file=sys.stderr)
        _say("the cluster keeps running for a look (`knserve local status`); `knserve local down` stops it")
        return 1
    _say(f"knserve applied on containerd nodes in {time.monotonic() - began:.1f}s")
    print()
    print("Next:")
    print(f"  export KUBECONFIG={control_plane.kubeconfig} PATH=\"{Path(sys.executable).parent}:$PATH\"")
    print("  kubectl apply -f examples/hello.yaml")
    print("  kubectl wait ksvc/hello --for=condition=Ready --timeout=60s")
    print(f"  curl -H 'Host: hello.default.example.com' http://{real.loadbalancer_address()}/"
          "   (knserve-ingress's EXTERNAL-IP in `kubectl -n knative-serving get service`)")
    print("  kubectl -n knative-serving port-forward svc/knserve-dashboard 8070   "
          "then open http://127.0.0.1:8070/ (the dashboard, read-only)")
    print("  kubectl -n knative-serving port-forward svc/knserve-gateway 31112:8080   "
          "then faas-cli --gateway http://127.0.0.1:31112 (OpenFaaS's API)")
    return 0


def up(args: argparse.Namespace) -> int:
    if args.runtime == realcluster.CONTAINERD:
        return up_containerd(args)
    began = time.monotonic()
    try:
        found = binaries_module.ensure_binaries(progress=_say)
    except binaries_module.BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    cluster = LocalCluster(Path(args.state_dir), found)
    if realcluster.recorded_runtime(cluster.state_dir) == realcluster.CONTAINERD:
        _containerd_cluster(args).stop(progress=_say)
        (cluster.state_dir / realcluster.RUNTIME_FILE).unlink(missing_ok=True)
    if args.reset:
        _say("removing the old cluster's data (--reset)")
        cluster.reset()
    stack = LocalStack(cluster)
    try:
        cluster.start(progress=_say)
        _say(f"Kubernetes {binaries_module.KUBERNETES_VERSION} ready ({time.monotonic() - began:.1f}s)")
        stack.start(progress=_say)
    except StartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _say(f"knserve ready in {time.monotonic() - began:.1f}s")
    ingress = cluster.ports.ingress
    print()
    print("Next:")
    print(f"  export KUBECONFIG={cluster.kubeconfig} PATH=\"{Path(sys.executable).parent}:$PATH\"")
    print("  kubectl apply -f examples/hello.yaml")
    print("  kubectl wait ksvc/hello --for=condition=Ready --timeout=60s")
    print(f"  curl -H 'Host: hello.default.example.com' http://127.0.0.1:{ingress}/")
    if stack.dashboard_ready():
        print(f"  open http://127.0.0.1:{cluster.ports.dashboard}/   (the dashboard, edits on)")
    else:
        print(f"  (the dashboard did not answer on 127.0.0.1:{cluster.ports.dashboard}: "
              "kubectl logs -n knative-serving deploy/knserve-dashboard)")
    return 0


def down(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    LocalStack(cluster).stop(progress=_say)
    if realcluster.recorded_runtime(cluster.state_dir) == realcluster.CONTAINERD:
        _containerd_cluster(args).stop(progress=_say, remove_routes=args.remove_routes)
    else:
        cluster.stop(progress=_say, remove_routes=args.remove_routes)
    _say("stopped (objects are kept; `knserve local up` brings them back)")
    return 0


def status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    rows: list[tuple[str, int | None, bool, Path | str]]
    if realcluster.recorded_runtime(cluster.state_dir) == realcluster.CONTAINERD:
        rows = list(_containerd_cluster(args).status())
    else:
        rows = [(row.name, row.pid, row.healthy, row.log) for row in cluster.status()]
        rows += LocalStack(cluster).status()
    for name, pid, healthy, log in rows:
        state = "healthy" if healthy else ("running" if pid else "stopped")
        print(f"{name:<26} {state:<8} pid {pid or '-'!s:<8} log {log}")
    return 0 if all(healthy for _, _, healthy, _ in rows) else 1


def kubeconfig(args: argparse.Namespace) -> int:
    print(_cluster(args).kubeconfig)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="knserve local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", default=str(default_state_dir()), help="where the cluster keeps its data")
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the local cluster and knserve")
    up_parser.add_argument("--reset", action="store_true", help="start from an empty cluster")
    up_parser.add_argument("--runtime", choices=(realcluster.PROCESS, realcluster.CONTAINERD), default=realcluster.PROCESS,
                           help="process: the fast process node (default); containerd: real kubelet + containerd nodes")
    up_parser.add_argument("--nodes", type=int, default=1, help="how many containerd nodes (--runtime containerd)")
    up_parser.set_defaults(run=up)
    down_parser = commands.add_parser("down", help="stop everything `up` started")
    down_parser.add_argument("--remove-routes", action="store_true",
                             help="also remove the host routes that keep cluster addresses on this machine")
    down_parser.set_defaults(run=down)
    commands.add_parser("status", help="show what runs").set_defaults(run=status)
    commands.add_parser("kubeconfig", help="print the admin kubeconfig path").set_defaults(run=kubeconfig)
    args = parser.parse_args(argv)
    return int(args.run(args))
