"""What a cluster of real nodes needs beside the control plane, as objects to apply: the
``kubernetes`` Service's endpoints, CoreDNS and local PersistentVolumes.

- The API server runs with ``--endpoint-reconciler-type=none`` (it listens on loopback for
  the process node), so the ``kubernetes`` Service gets its endpoint here: the API server at
  the host's address on the first node's veth link (its certificate is checked for
  ``kubernetes.default.svc``, which it carries).
- CoreDNS runs as a non-root pod, so it listens on 1053 and the ``kube-dns`` Service maps 53
  (UDP and TCP) to it. It answers for ``cluster.local`` only: any other name gets no answer
  from outside the machine (no ``forward``).

All builders are pure: they return the objects, ``kubectl apply`` is the caller's.
"""

from __future__ import annotations

from typing import Any

from localcluster.containerdnode import CLUSTER_DNS

COREDNS_IMAGE = "knserve.local/coredns:1.15.0"
COREDNS_PORT = 1053
SYSTEM = "kube-system"

Object = dict[str, Any]

COREFILE = f""".:{COREDNS_PORT} {{
    errors
    health {{
        lameduck 2s
    }}
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loop
    reload
}}
"""


def kubernetes_endpoints(address: str, port: int) -> list[Object]:
    """Endpoints and an EndpointSlice for ``default/kubernetes`` at ``address:port``."""
    labels = {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "knserve.local"}
    return [
        {"apiVersion": "v1", "kind": "Endpoints",
         "metadata": {"name": "kubernetes", "namespace": "default",
                      "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
         "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    ]


def coredns(*, replicas: int = 1) -> list[Object]:
    """CoreDNS's account, role, configuration, Deployment and the ``kube-dns`` Service."""
    name = "coredns"
    labels = {"k8s-app": "kube-dns"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": SYSTEM}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"},
         "rules": [
             {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": SYSTEM}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": SYSTEM},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": SYSTEM, "labels": labels},
         "spec": {
             "replicas": replicas,
             "selector": {"matchLabels": labels},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {
                     "serviceAccountName": name,
                     "dnsPolicy": "Default",
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
                     "containers": [{
                         "name": name,
                         "image": COREDNS_IMAGE,
                         "imagePullPolicy": "IfNotPresent",
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "ports": [{"name": "dns", "containerPort": COREDNS_PORT, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": COREDNS_PORT, "protocol": "TCP"}],
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
                         "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "50m", "memory": "70Mi"}},
                     }],
                     "volumes": [{"name": "config", "configMap": {"name": name}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": SYSTEM, "labels": labels},
         "spec": {
             "selector": labels,
             "clusterIP": CLUSTER_DNS,
             "ports": [{"name": "dns", "port": 53, "targetPort": COREDNS_PORT, "protocol": "UDP"},
                       {"name": "dns-tcp", "port": 53, "targetPort": COREDNS_PORT, "protocol": "TCP"}],
         }},
    ]


def local_volumes(node: str, directory: str, *, count: int = 4, size: str = "20Gi") -> list[Object]:
    """PersistentVolumes of class "" on ``node``, each a directory under ``directory``: claims
    without a StorageClass (a StatefulSet's, such as NATS's) bind to them, as the process node
    gives every claim a directory."""
    return [
        {"apiVersion": "v1", "kind": "PersistentVolume",
         "metadata": {"name": f"{node}-volume-{index}", "labels": {"knserve.local/node": node}},
         "spec": {
             "capacity": {"storage": size},
             "accessModes": ["ReadWriteOnce"],
             "persistentVolumeReclaimPolicy": "Retain",
             "storageClassName": "",
             "hostPath": {"path": f"{directory}/volume-{index}", "type": "DirectoryOrCreate"},
             "nodeAffinity": {"required": {"nodeSelectorTerms": [
                 {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
         }}
        for index in range(count)
    ]
