"""The install against a real API server: it is accepted as a whole (server-side dry run),
and the RBAC lets each component do what its code does, and no more."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.config.manifests import CONFIG, INSTALL
from tests.conftest import Cluster

NAMESPACE = "knative-serving"


@pytest.fixture(scope="module")
def installed_roles(cluster: Cluster) -> Cluster:
    """The namespace, CRDs and RBAC applied for real (the throwaway cluster may hold them already)."""
    for entry in ("100-namespace.yaml", "300-resources", "200-roles"):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=knserve-local",
                        "-f", str(CONFIG / entry))
    return cluster


def test_the_whole_install_is_accepted_by_the_api_server(installed_roles: Cluster) -> None:
    files = [arg for entry in INSTALL for arg in ("-f", str(CONFIG / entry))]
    result = installed_roles.kubectl("apply", "--dry-run=server", *files)
    for name in ("deployment.apps/controller", "deployment.apps/envoy", "service/knserve-ingress",
                 "configmap/knserve-envoy-bootstrap", "clusterrole.rbac.authorization.k8s.io/knserve-controller"):
        assert name in result.stdout


def _account(name: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{name}"


# (account, verb, resource, namespace, subresource, allowed)
PERMISSIONS = [
    pytest.param("controller", "create", "deployments.apps", "some-user-ns", None, True, id="controller-creates-deployments"),
    pytest.param("controller", "update", "deployments.apps", "some-user-ns", None, True, id="controller-updates-deployments"),
    pytest.param("controller", "delete", "deployments.apps", "some-user-ns", None, False, id="controller-never-deletes-deployments"),
    pytest.param("controller", "patch", "deployments.apps", "some-user-ns", "scale", False, id="controller-never-scales"),
    pytest.param("controller", "create", "services", "some-user-ns", None, True, id="controller-creates-kube-services"),
    pytest.param("controller", "delete", "services", "some-user-ns", None, True, id="controller-deletes-placeholder-services"),
    pytest.param("controller", "watch", "pods", "some-user-ns", None, True, id="controller-watches-pods"),
    pytest.param("controller", "create", "pods", "some-user-ns", None, False, id="controller-never-creates-pods"),
    pytest.param("controller", "watch", "endpointslices.discovery.k8s.io", "some-user-ns", None, True,
                 id="controller-watches-endpointslices"),
    pytest.param("controller", "create", "revisions.serving.knative.dev", "some-user-ns", None, True,
                 id="controller-creates-revisions"),
    pytest.param("controller", "delete", "revisions.serving.knative.dev", "some-user-ns", None, True,
                 id="controller-collects-revisions"),
    pytest.param("controller", "update", "routes.serving.knative.dev", "some-user-ns", "status", True,
                 id="controller-writes-route-status"),
    pytest.param("controller", "update", "services.serving.knative.dev", "some-user-ns", "finalizers", True,
                 id="controller-blocks-owner-deletion"),
    pytest.param("controller", "create", "podautoscalers.autoscaling.internal.knative.dev", "some-user-ns", None, True,
                 id="controller-creates-podautoscalers"),
    pytest.param("controller", "patch", "podautoscalers.autoscaling.internal.knative.dev", "some-user-ns", "status",
                 False, id="controller-leaves-pa-status-to-the-autoscaler"),
    pytest.param("controller", "create", "events", "some-user-ns", None, True, id="controller-records-events"),
    pytest.param("controller", "watch", "configmaps", NAMESPACE, None, True, id="controller-watches-its-configmaps"),
    pytest.param("controller", "list", "configmaps", "some-user-ns", None, False, id="controller-no-user-configmaps"),
    pytest.param("controller", "get", "secrets", NAMESPACE, None, False, id="controller-no-secrets"),
    pytest.param("controller", "get", "secrets/knserve-xds-certs", NAMESPACE, None, True, id="controller-reads-xds-certs"),
    pytest.param("controller", "create", "secrets", NAMESPACE, None, True, id="controller-makes-xds-secrets"),
    pytest.param("controller", "get", "secrets/webhook-certs", NAMESPACE, None, False, id="controller-not-webhook-certs"),
    pytest.param("autoscaler", "create", "tokenreviews.authentication.k8s.io", None, None, True,
                 id="autoscaler-reviews-stats-tokens"),
    # The admission webhook is its own process (knserve webhook) and registers itself.
    pytest.param("controller", "create", "validatingwebhookconfigurations.admissionregistration.k8s.io", None, None,
                 False, id="controller-registers-no-webhook"),
    pytest.param("webhook", "create", "validatingwebhookconfigurations.admissionregistration.k8s.io", None, None,
                 True, id="webhook-registers-itself"),
    pytest.param("webhook", "update",
                 "validatingwebhookconfigurations.admissionregistration.k8s.io/validation.webhook.serving.knative.dev",
                 None, None, True, id="webhook-replaces-its-own"),
    pytest.param("webhook", "update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses",
                 None, None, False, id="webhook-leaves-other-webhooks"),
    pytest.param("webhook", "get", "secrets/webhook-certs", NAMESPACE, None, True, id="webhook-reads-its-certs"),
    pytest.param("autoscaler", "watch", "podautoscalers.autoscaling.internal.knative.dev", "some-user-ns", None, True,
                 id="autoscaler-watches-podautoscalers"),
    pytest.param("autoscaler", "patch", "podautoscalers.autoscaling.internal.knative.dev", "some-user-ns", "status",
                 True, id="autoscaler-writes-pa-status"),
    pytest.param("autoscaler", "update", "podautoscalers.autoscaling.internal.knative.dev", "some-user-ns", None,
                 False, id="autoscaler-leaves-pa-spec"),
    pytest.param("autoscaler", "get", "deployments.apps", "some-user-ns", None, True, id="autoscaler-reads-deployments"),
    pytest.param("autoscaler", "watch", "deployments.apps", "some-user-ns", None, True, id="autoscaler-watches-deployments"),
    pytest.param("autoscaler", "patch", "deployments.apps", "some-user-ns", "scale", True,
                 id="autoscaler-scales-deployments"),
    pytest.param("autoscaler", "patch", "deployments.apps", "some-user-ns", None, False,
                 id="autoscaler-only-through-scale"),
    pytest.param("autoscaler", "watch", "pods", "some-user-ns", None, True, id="autoscaler-watches-pods"),
    pytest.param("autoscaler", "watch", "configmaps/config-autoscaler", NAMESPACE, None, True,
                 id="autoscaler-watches-config-autoscaler"),
    pytest.param("autoscaler", "get", "configmaps/config-network", NAMESPACE, None, False,
                 id="autoscaler-no-other-configmaps"),
    pytest.param("activator", "watch", "revisions.serving.knative.dev", "some-user-ns", None, True,
                 id="activator-watches-revisions"),
    pytest.param("activator", "watch", "pods", "some-user-ns", None, True, id="activator-watches-pods"),
    pytest.param("activator", "update", "revisions.serving.knative.dev", "some-user-ns", None, False,
                 id="activator-writes-nothing"),
    pytest.param("envoy", "get", "pods", NAMESPACE, None, False, id="envoy-reads-nothing"),
    pytest.param("knserve-dashboard", "watch", "services.serving.knative.dev", "some-user-ns", None, True,
                 id="dashboard-watches-services"),
    pytest.param("knserve-dashboard", "watch", "revisions.serving.knative.dev", "some-user-ns", None, True,
                 id="dashboard-watches-revisions"),
    pytest.param("knserve-dashboard", "list", "events", "some-user-ns", None, True, id="dashboard-reads-events"),
    # Edits need the ClusterRole knserve-dashboard-edit, which the cluster install does not bind.
    pytest.param("knserve-dashboard", "patch", "services.serving.knative.dev", "some-user-ns", None, False,
                 id="dashboard-writes-nothing-unless-edits-are-bound"),
    pytest.param("knserve-dashboard", "get", "secrets", "some-user-ns", None, False, id="dashboard-no-secrets"),
]


@pytest.mark.parametrize(("account", "verb", "resource", "namespace", "subresource", "allowed"), PERMISSIONS)
def test_rbac(installed_roles: Cluster, account: str, verb: str, resource: str, namespace: str | None,
              subresource: str | None, allowed: bool) -> None:
    args = ["auth", "can-i", verb, resource, f"--as={_account(account)}"]
    args += ["-n", namespace] if namespace else []
    args += [f"--subresource={subresource}"] if subresource else []
    result = installed_roles.kubectl(*args, check=False)
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


def test_before_the_webhook_runs_the_install_refuses_knserve_kinds_with_the_reason(installed_roles: Cluster) -> None:
    """config/400-webhooks.yaml as the install applies it, but scoped to one namespace (the test
    API server is shared) and under names of its own: with no webhook running yet, a Service is
    refused and says why, instead of being stored without its defaults and validation."""
    namespace = "webhook-not-yet"
    installed_roles.kubectl("create", "namespace", namespace)
    scoped = []
    for document in yaml.safe_load_all((CONFIG / "400-webhooks.yaml").read_text()):
        document["metadata"]["name"] += f".{namespace}"
        document["webhooks"][0]["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        scoped.append(document)
    installed_roles.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(scoped))
    service = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "early"},
               "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}}}}
    try:
        refused = installed_roles.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(service), check=False)
        assert refused.returncode != 0
        assert 'failed calling webhook "webhook.serving.knative.dev"' in refused.stderr, refused.stderr
        assert installed_roles.kubectl("get", "ksvc", "-n", namespace, "-o", "name").stdout.strip() == ""
    finally:
        installed_roles.kubectl("delete", "-f", "-", input=yaml.safe_dump_all(scoped), check=False)
        installed_roles.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
