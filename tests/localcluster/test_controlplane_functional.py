"""The local control plane as a user meets it: kubectl talks to a real, versioned API server."""

from __future__ import annotations

import json

from localcluster.binaries import KUBERNETES_VERSION


def test_kubectl_version_reports_the_pinned_server_version(cluster):
    result = cluster.kubectl("version", "-o", "json")
    server = json.loads(result.stdout)["serverVersion"]
    assert server["gitVersion"] == KUBERNETES_VERSION
    assert server["major"] == KUBERNETES_VERSION.removeprefix("v").split(".")[0]


def test_rbac_is_enforced_for_service_accounts(cluster, namespace):
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    cluster.kubectl("create", "rolebinding", "reader", "--role=pod-reader",
                    f"--serviceaccount={namespace}:reader", "-n", namespace)
    as_reader = f"--as=system:serviceaccount:{namespace}:reader"
    assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", namespace, as_reader, check=False).stdout.strip() == "yes"
    denied = cluster.kubectl("get", "secrets", "-n", namespace, as_reader, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


def test_deleting_a_namespace_cascades_and_finishes(cluster):
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("create", "configmap", "x", "-n", "doomed", "--from-literal=a=b")
    cluster.kubectl("delete", "namespace", "doomed", "--timeout=60s")
    assert cluster.kubectl("get", "namespace", "doomed", check=False).returncode != 0


def test_owner_references_cascade_through_the_garbage_collector(cluster, namespace):
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    uid = cluster.kubectl("get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    owned = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owned", "namespace": namespace,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(owned))
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    cluster.kubectl("wait", "--for=delete", "configmap/owned", "-n", namespace, "--timeout=60s")
