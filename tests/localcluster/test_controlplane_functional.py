"""The local control plane as a user meets it: kubectl talks to a real, versioned API server."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from localcluster.binaries import KUBERNETES_VERSION
from localcluster.controlplane import KUBE_CONTROLLERS, KUBE_CONTROLLERS_OFF


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


def test_kube_controller_manager_runs_every_controller_but_the_ones_said_to_be_off(cluster):
    help_text = subprocess.run([str(cluster.local.binaries.kube_controller_manager), "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    listed = help_text.split("All controllers:", 1)[1].split("Disabled-by-default", 1)[0]
    every = {name.strip() for name in listed.replace("\n", " ").split(",") if name.strip()}
    assert set(KUBE_CONTROLLERS) | set(KUBE_CONTROLLERS_OFF) == every
    assert not set(KUBE_CONTROLLERS) & set(KUBE_CONTROLLERS_OFF)


def test_a_namespace_with_claims_and_a_volume_finishes_deleting(cluster):
    name = f"claims-{uuid.uuid4().hex[:6]}"
    volume = f"{name}-volume"
    cluster.kubectl("create", "namespace", name)
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}, "storageClassName": ""}
    objects = [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
         "spec": {"capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                  "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{volume}"},
                  "claimRef": {"namespace": name, "name": "used"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "used", "namespace": name},
         "spec": {**claim, "volumeName": volume}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "unused", "namespace": name},
         "spec": claim},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user", "namespace": name},
         "spec": {"terminationGracePeriodSeconds": 1,
                  "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "used"}}],
                  "containers": [{"name": "sleep", "image": "example.test/sleep:v1", "command": ["sleep", "600"],
                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
    ]
    try:
        deadline = time.monotonic() + 60
        while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
            assert time.monotonic() < deadline, "the namespace never got its default service account"
            time.sleep(0.2)
        cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Bound", "pvc/used", "-n", name, "--timeout=60s")
        cluster.kubectl("wait", "--for=condition=Ready", "pod/user", "-n", name, "--timeout=60s")
        finalizers = cluster.kubectl("get", "pvc", "used", "unused", "-n", name, "-o",
                                     "jsonpath={.items[*].metadata.finalizers}").stdout
        assert finalizers.count("kubernetes.io/pvc-protection") == 2

        cluster.kubectl("delete", "namespace", name, "--timeout=90s", timeout=100)
        assert cluster.kubectl("get", "namespace", name, check=False).returncode != 0
        # The claim is gone, so the volume is Released and may be deleted too (pv-protection).
        cluster.kubectl("delete", "pv", volume, "--timeout=60s")
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
        cluster.kubectl("delete", "pv", volume, "--wait=false", check=False)


def etcd_version(url: str, context: ssl.SSLContext | None = None) -> bytes:
    with urllib.request.urlopen(f"{url}/version", timeout=5, context=context) as response:
        return bytes(response.read())


def test_etcd_answers_only_clients_with_a_certificate_from_its_own_ca(cluster):
    local = cluster.local
    assert b"etcdserver" in etcd_version(local.etcd_url, local.etcd_client_context())

    plain = f"http://127.0.0.1:{local.ports.etcd_client}"
    with pytest.raises((urllib.error.URLError, OSError)) as refused:
        etcd_version(plain)
    assert "etcdserver" not in str(getattr(refused.value, "read", lambda: b"")())

    anonymous = ssl.create_default_context(cafile=str(local.etcd_pki_dir / "ca.crt"))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        etcd_version(local.etcd_url, anonymous)

    # A certificate of the cluster CA (which signs approved CSRs) is not enough either.
    cluster_client = ssl.create_default_context(cafile=str(local.etcd_pki_dir / "ca.crt"))
    cluster_client.load_cert_chain(local.pki_dir / "apiserver-kubelet-client.crt",
                                   local.pki_dir / "apiserver-kubelet-client.key")
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        etcd_version(local.etcd_url, cluster_client)

    # ...while the API server, etcd's one client, works on.
    assert cluster.kubectl("get", "--raw", "/readyz/etcd").stdout == "ok"
