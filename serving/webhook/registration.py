"""The Validating/MutatingWebhookConfiguration objects that send knserve's kinds to the webhook.

Builders; the webhook creates or replaces the objects as it starts (``install.register_webhooks``).
``client_config`` is either ``{"service": {"namespace", "name", "port"}}`` (in a cluster) or
``{"url": ...}`` (locally), plus ``caBundle`` (base64 PEM of the CA that signed the serving
certificate).

The install declares them too, without a CA (``config/400-webhooks.yaml``, written by
``python -m serving.webhook.registration``), as Knative's does: from the moment it is applied,
until the webhook has started and added its CA, the API server cannot call the webhook and,
``failurePolicy`` being ``Fail``, refuses knserve's kinds with the reason. Without them, a
Service applied in that window would be stored without its defaults or validation (and
defaulted later, by its first update: a second Revision of the same template).
"""

from __future__ import annotations

import base64
import sys
from typing import Any, Final

import yaml

from knserve.networking import SYSTEM_NAMESPACE
from serving.webhook.review import DEFAULTING_PATH, VALIDATION_PATH

VALIDATING_NAME: Final = "validation.webhook.serving.knative.dev"
DEFAULTING_NAME: Final = "webhook.serving.knative.dev"
RESOURCES: Final = ("services", "configurations", "routes", "revisions")
NOT_SYSTEM_NAMESPACES: Final = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                      "values": ["kube-system", SYSTEM_NAMESPACE]}]}
"""System namespaces are never sent to the webhook: a broken webhook must not lock them."""


def client_config(
    *, ca_pem: bytes | None, path: str, url: str | None = None,
    service_namespace: str = SYSTEM_NAMESPACE, service_name: str = "webhook", service_port: int = 443,
) -> dict[str, Any]:
    config: dict[str, Any] = {} if ca_pem is None else {"caBundle": base64.b64encode(ca_pem).decode()}
    if url is not None:
        config["url"] = url.rstrip("/") + path
    else:
        config["service"] = {"namespace": service_namespace, "name": service_name, "port": service_port, "path": path}
    return config


def _webhook(name: str, config: dict[str, Any], namespace_selector: dict[str, Any] | None) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": config,
        "rules": [{
            "apiGroups": ["serving.knative.dev"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": list(RESOURCES),
            "scope": "Namespaced",
        }],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "timeoutSeconds": 10,
        "matchPolicy": "Equivalent",
    }
    if namespace_selector is not None:
        webhook["namespaceSelector"] = namespace_selector
    return webhook


def validating_webhook_configuration(
    *, ca_pem: bytes | None, url: str | None = None, name: str = VALIDATING_NAME,
    namespace_selector: dict[str, Any] | None = None, **service: Any,
) -> dict[str, Any]:
    config = client_config(ca_pem=ca_pem, path=VALIDATION_PATH, url=url, **service)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "knserve"}},
        "webhooks": [_webhook(VALIDATING_NAME, config, namespace_selector)],
    }


def mutating_webhook_configuration(
    *, ca_pem: bytes | None, url: str | None = None, name: str = DEFAULTING_NAME,
    namespace_selector: dict[str, Any] | None = None, **service: Any,
) -> dict[str, Any]:
    webhook = _webhook(DEFAULTING_NAME, client_config(ca_pem=ca_pem, path=DEFAULTING_PATH, url=url, **service),
                       namespace_selector)
    webhook["reinvocationPolicy"] = "IfNeeded"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "knserve"}},
        "webhooks": [webhook],
    }


INSTALL_HEADER: Final = """\
# The webhook configurations, as the webhook registers them but without its CA: written by
# `python -m serving.webhook.registration` (a test fails when they drift). Until the webhook has
# started and added its CA, the API server refuses knserve's kinds (failurePolicy: Fail) instead
# of storing them unchecked and without defaults.
"""


def install_manifest() -> str:
    """``config/400-webhooks.yaml``: both configurations, pointing at the ``webhook`` Service, without a CA."""
    documents = [builder(ca_pem=None, namespace_selector=NOT_SYSTEM_NAMESPACES)
                 for builder in (mutating_webhook_configuration, validating_webhook_configuration)]
    return INSTALL_HEADER + yaml.safe_dump_all(documents, sort_keys=False)


def main() -> int:
    sys.stdout.write(install_manifest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
