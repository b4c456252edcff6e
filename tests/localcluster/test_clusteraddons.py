"""What real nodes need beside the control plane: the API server's endpoint and CoreDNS."""

from __future__ import annotations

from localcluster.clusteraddons import COREDNS_PORT, coredns, kubernetes_endpoints


def test_kubernetes_service_points_at_the_api_server_on_the_host() -> None:
    endpoints, endpoint_slice = kubernetes_endpoints("10.244.128.253", 6443)
    assert endpoints["subsets"] == [{"addresses": [{"ip": "10.244.128.253"}],
                                     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    assert endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    assert endpoint_slice["endpoints"] == [{"addresses": ["10.244.128.253"], "conditions": {"ready": True}}]


def test_coredns_runs_unprivileged_on_a_high_port_behind_port_53() -> None:
    objects = {o["kind"]: o for o in coredns()}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {p["containerPort"] for p in pod["containers"][0]["ports"]} == {COREDNS_PORT}
    service = objects["Service"]["spec"]
    assert service["clusterIP"] == "10.96.0.10"
    assert {(p["port"], p["targetPort"], p["protocol"]) for p in service["ports"]} == {
        (53, COREDNS_PORT, "UDP"), (53, COREDNS_PORT, "TCP")}
    corefile = objects["ConfigMap"]["data"]["Corefile"]
    assert f".:{COREDNS_PORT}" in corefile and "forward" not in corefile


def test_coredns_lameduck_is_on_its_own_line_inside_health() -> None:
    corefile = {o["kind"]: o for o in coredns()}["ConfigMap"]["data"]["Corefile"]
    lines = [line.strip() for line in corefile.splitlines()]
    assert lines[lines.index("health {") + 1] == "lameduck 2s"
