"""config/'s Deployments as the local cluster runs them: the same objects; Envoy on the host
network at the cluster's own ports, the controller telling it where to listen."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import yaml

from localcluster.controlplane import Ports
from localcluster.manifests import local_deployments
from serving.xds.bootstrap import RESERVED_FILES

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOYMENTS = sorted((REPOSITORY / "config" / "deployments").glob("*.yaml"))
PORTS = Ports(etcd_client=1, etcd_peer=2, apiserver=3, controller_manager=4, kubelet=5, ingress=41080,
              ingress_internal=41081, envoy_admin=41901, xds=41800, webhook=41443, activator=41012,
              activator_metrics=41092, autoscaler=41180, autoscaler_metrics=41093, controller_metrics=41094)


def original() -> dict[str, dict]:
    return {m["metadata"]["name"]: m for path in DEPLOYMENTS for m in yaml.safe_load_all(path.read_text())
            if m and m["kind"] == "Deployment"}


def deployments() -> dict[str, dict]:
    manifests = local_deployments(DEPLOYMENTS, PORTS, node_ip="10.244.9.1")
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_only_envoy_the_gateway_and_the_dashboard_run_on_the_host_network():
    found = deployments()
    assert set(found) == {"controller", "webhook", "activator", "autoscaler", "envoy", "knserve-queue",
                          "knserve-gateway", "knserve-dashboard"}
    assert {name for name, d in found.items() if d["spec"]["template"]["spec"].get("hostNetwork")} == {
        "envoy", "knserve-gateway", "knserve-dashboard"}
    assert found["envoy"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_the_activator_and_autoscaler_run_as_config_has_them_but_for_text_logs():
    found, before = deployments(), original()
    for name in ("activator", "autoscaler"):
        assert container(found[name])["args"] == [
            arg for arg in container(before[name])["args"] if not arg.startswith("--log-format=")]
        assert found[name]["spec"]["template"]["spec"]["serviceAccountName"] == name
    manifests = local_deployments(DEPLOYMENTS, PORTS)
    assert sorted({m["kind"] for m in manifests}) == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "StatefulSet"]


def test_the_gateway_listens_on_localhost_at_its_port_and_calls_through_the_ingress():
    gateway = container(deployments()["knserve-gateway"])
    assert gateway["args"] == ["gateway", f"--port={PORTS.gateway}", f"--ingress=http://127.0.0.1:{PORTS.ingress}",
                               "--namespace=default", "--address=127.0.0.1"]
    assert gateway["ports"] == [{"name": "http", "containerPort": PORTS.gateway}]
    assert gateway["readinessProbe"]["httpGet"]["host"] == "127.0.0.1"


def test_the_dashboard_listens_on_localhost_with_edits_and_finds_the_metrics_api_by_its_endpoints():
    dashboard = container(deployments()["knserve-dashboard"])
    assert dashboard["args"] == ["dashboard", f"--port={PORTS.dashboard}", f"--ingress=http://127.0.0.1:{PORTS.ingress}",
                                 "--metrics=endpoints:knative-serving/autoscaler:http-metrics",
                                 "--queue-metrics=endpoints:knative-serving/knserve-queue:http-metrics",
                                 "--namespace=default",
                                 "--address=127.0.0.1", "--edits"]
    assert dashboard["ports"] == [{"name": "http", "containerPort": PORTS.dashboard}]
    assert dashboard["readinessProbe"]["httpGet"]["host"] == "127.0.0.1"
    assert "--edits" not in container(original()["knserve-dashboard"])["args"]  # off in a cluster install


def test_the_controller_tells_envoy_to_listen_on_the_clusters_ports():
    args = container(deployments()["controller"])["args"]
    assert "--ingress-external-address=127.0.0.1:41080" in args
    # Pods reach the internal listener through the knserve-internal Service: on the node's IP.
    assert "--ingress-internal-address=10.244.9.1:41081" in args
    assert "--activator-service=knative-serving/activator-service" in args


def test_envoy_gets_its_bootstrap_inline_and_its_probes_go_to_localhost():
    envoy = container(deployments()["envoy"])
    bootstrap = json.loads(envoy["args"][envoy["args"].index("--config-yaml") + 1])
    # The admin interface on a socket in a directory of the pod's own; /ready reaches it from
    # 127.0.0.1:41901.
    assert bootstrap["admin"]["address"] == {"pipe": {"path": "/var/run/knserve-envoy/admin.sock"}}
    assert {"name": "admin", "mountPath": "/var/run/knserve-envoy"} in envoy["volumeMounts"]
    [ready] = [listener for listener in bootstrap["static_resources"]["listeners"] if listener["name"] == "knserve_ready"]
    assert ready["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 41901}
    xds = bootstrap["static_resources"]["clusters"][0]
    assert xds["type"] == "STRICT_DNS"  # the controller pod's address, from cluster DNS
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert endpoint == {"address": "knserve-xds.knative-serving.svc.cluster.local", "port_value": 18000}
    assert {p["name"]: p["containerPort"] for p in envoy["ports"]} == {
        "http": 41080, "http-internal": 41081, "http-ready": 41901}
    assert envoy["readinessProbe"]["tcpSocket"] == {"port": "http", "host": "127.0.0.1"}


def test_envoy_is_handed_over_without_a_gap():
    envoy_deployment = deployments()["envoy"]
    assert envoy_deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    envoy = container(envoy_deployment)
    assert envoy["args"][envoy["args"].index("--service-node") + 1] == "$(POD_NAME)"  # two xDS nodes meanwhile
    script = envoy["lifecycle"]["preStop"]["exec"]["command"][-1]
    assert "0100007F:A078 00000000:0000 0A" in script  # waits for another listener on 127.0.0.1:41080
    assert "--unix-socket /var/run/knserve-envoy/admin.sock" in script and "drain_listeners?graceful" in script
    assert "$(" not in script  # Kubernetes would expand it


def test_envoy_holds_no_more_connections_than_the_machine_lets_it_open_files():
    envoy = container(deployments()["envoy"])
    bootstrap = json.loads(envoy["args"][envoy["args"].index("--config-yaml") + 1])
    [connections] = [monitor["typed_config"]["max_active_downstream_connections"]
                     for monitor in bootstrap["overload_manager"]["resource_monitors"]
                     if monitor["name"] == "envoy.resource_monitors.global_downstream_max_connections"]
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # what the node's processes get
    # A client connection and its upstream one each take a descriptor, and Envoy needs some of its own.
    assert open_files == resource.RLIM_INFINITY or 2 * connections + RESERVED_FILES <= open_files
