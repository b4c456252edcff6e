"""knserve itself on the local cluster: manifests, then the controller, activator, autoscaler and Envoy.

After the control plane is up, ``LocalStack.start`` applies knserve's manifests from
``config/`` (namespace, CRDs, ConfigMaps) plus the local image map, then runs knserve's
components beside the control plane, each a background process with a pid file and a log:

    knserve-controller   reconcilers, the xDS server (127.0.0.1:<xds>) and the admission webhook
    envoy                the ingress: 127.0.0.1:<ingress> for users, <ingress_internal> for cluster-local
    knserve-activator    holds requests for revisions without ready pods
    knserve-autoscaler   the KPA: scrapes queue-proxies, writes /scale

Side effects: runs kubectl against the cluster, starts and stops processes, writes files in
the state directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from serving.local import processes
from serving.local.controlplane import LocalCluster, Progress
from serving.xds.bootstrap import BootstrapSettings, make_bootstrap
from serving.xds.envoy_process import find_envoy

REPOSITORY = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPOSITORY / "config"
# Applied in this order; each entry is a file or a directory of manifests.
MANIFESTS = ("100-namespace.yaml", "300-resources", "configmaps", "local")
ENVOY_NODE_ID = "knserve-local-ingress"


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else "kubectl"


class LocalStack:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    @property
    def ports(self):  # type: ignore[no-untyped-def]
        return self.cluster.ports

    def _knserve(self, name: str, args: list[str], **kwargs: object) -> processes.ProcessSpec:
        return processes.ProcessSpec(
            name=name,
            argv=(sys.executable, "-m", "serving.cli", *args),
            run_dir=self.cluster.state_dir / "run",
            log_dir=self.cluster.state_dir / "logs",
            marker=f"serving.cli {args[0]}",
            **kwargs,  # type: ignore[arg-type]
        )

    # --- manifests -------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {"KUBECONFIG": str(self.cluster.kubeconfig), "PATH": str(Path(sys.executable).parent)}
        return subprocess.run([kubectl_binary(), *args], env=env, input=input, capture_output=True, text=True,
                              timeout=120)

    def apply_manifests(self) -> None:
        for entry in MANIFESTS:
            path = CONFIG_DIR / entry
            if not path.exists():
                continue
            result = self.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=knserve-local",
                                  "-f", str(path))
            if result.returncode != 0:
                raise processes.StartError(f"applying {path.relative_to(REPOSITORY)} failed:\n{result.stderr.strip()}")
        # CRDs must be served before the controller starts watching them.
        result = self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                              "crd/services.serving.knative.dev", "crd/configurations.serving.knative.dev",
                              "crd/revisions.serving.knative.dev", "crd/routes.serving.knative.dev",
                              "crd/podautoscalers.autoscaling.internal.knative.dev")
        if result.returncode != 0:
            raise processes.StartError(f"the CRDs were not established:\n{result.stderr.strip()}")

    # --- components ------------------------------------------------------------------------
    def controller_spec(self) -> processes.ProcessSpec:
        p = self.ports
        return self._knserve("knserve-controller", [
            "controller",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--xds-address=127.0.0.1:{p.xds}",
            f"--ingress-external-address=127.0.0.1:{p.ingress}",
            f"--ingress-internal-address=127.0.0.1:{p.ingress_internal}",
            f"--activator-address=127.0.0.1:{p.activator}",
            f"--webhook-address=127.0.0.1:{p.webhook}",
            f"--webhook-url=https://127.0.0.1:{p.webhook}",
            f"--webhook-cert-dir={self.cluster.state_dir / 'webhook'}",
            f"--health-address=127.0.0.1:{p.controller_metrics}",
        ])

    def envoy_spec(self) -> processes.ProcessSpec:
        p = self.ports
        bootstrap = make_bootstrap(BootstrapSettings(
            node_id=ENVOY_NODE_ID, xds_host="127.0.0.1", xds_port=p.xds, admin_port=p.envoy_admin,
            keepalive_interval_seconds=10,
        ))
        path = self.cluster.state_dir / "envoy-bootstrap.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(bootstrap, indent=2))
        return processes.ProcessSpec(
            name="envoy",
            argv=(sys.executable, "-m", "serving.local.keeper", find_envoy(), "-c", str(path), "--log-level", "warn", "--concurrency", "2",
                  "--drain-time-s", "1", "--base-id", str(p.envoy_admin)),
            run_dir=self.cluster.state_dir / "run",
            log_dir=self.cluster.state_dir / "logs",
            marker="serving.local.keeper",
        )

    def activator_spec(self) -> processes.ProcessSpec:
        p = self.ports
        return self._knserve("knserve-activator", [
            "activator", f"--kubeconfig={self.cluster.kubeconfig}", "--host=127.0.0.1", f"--port={p.activator}",
            f"--metrics-port={p.activator_metrics}", f"--autoscaler-url=http://127.0.0.1:{p.autoscaler}",
            "--drain-seconds=1",
        ])

    def autoscaler_spec(self) -> processes.ProcessSpec:
        p = self.ports
        return self._knserve("knserve-autoscaler", [
            "autoscaler", f"--kubeconfig={self.cluster.kubeconfig}", "--host=127.0.0.1", f"--port={p.autoscaler}",
            f"--metrics-port={p.autoscaler_metrics}",
        ])

    # --- health ----------------------------------------------------------------------------
    @staticmethod
    def _answers(url: str, expect: bytes | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200 and (expect is None or expect in response.read())
        except (urllib.error.URLError, OSError):
            return False

    def envoy_live(self) -> bool:
        return self._answers(f"http://127.0.0.1:{self.ports.envoy_admin}/ready", b"LIVE")

    def _components(self) -> list[tuple[processes.ProcessSpec, Callable[[], bool], float]]:
        p = self.ports
        return [
            (self.autoscaler_spec(), lambda: self._answers(f"http://127.0.0.1:{p.autoscaler_metrics}/metrics"), 30.0),
            (self.activator_spec(), lambda: self._answers(f"http://127.0.0.1:{p.activator_metrics}/metrics"), 30.0),
            (self.controller_spec(), lambda: self._answers(f"http://127.0.0.1:{p.controller_metrics}/healthz"), 30.0),
            (self.envoy_spec(), self.envoy_live, 30.0),
        ]

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, *, progress: Progress = print) -> None:
        began = time.monotonic()
        self.apply_manifests()
        progress(f"knserve manifests applied ({time.monotonic() - began:.1f}s)")
        for spec, healthy, timeout in self._components():
            if processes.running_pid(spec) is not None and healthy():
                progress(f"{spec.name} already running")
                continue
            began = time.monotonic()
            pid = processes.start(spec)
            processes.wait_healthy(spec, pid, healthy, timeout=timeout)
            progress(f"{spec.name} ready ({time.monotonic() - began:.1f}s)")

    def stop(self, *, progress: Progress = print) -> None:
        for spec, _, _ in reversed(self._components()):
            if processes.stop(spec):
                progress(f"stopped {spec.name}")

    def status(self) -> list[tuple[str, int | None, bool, Path]]:
        rows = []
        for spec, healthy, _ in self._components():
            pid = processes.running_pid(spec)
            rows.append((spec.name, pid, pid is not None and healthy(), spec.log_file))
        return rows
