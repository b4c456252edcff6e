"""The Validating/MutatingWebhookConfiguration objects that send knserve's kinds to the webhook.

Pure builders; the controller creates or updates them. ``client_config`` is either
``{"service": {"namespace", "name", "port"}}`` (in a cluster) or ``{"url": ...}`` (locally),
plus ``caBundle`` (base64 PEM of the CA that signed the serving certificate).
"""

from __future__ import annotations

import base64
from typing import Any, Final

from serving.webhook.review import DEFAULTING_PATH, VALIDATION_PATH

VALIDATING_NAME: Final = "validation.webhook.serving.knative.dev"
DEFAULTING_NAME: Final = "webhook.serving.knative.dev"
RESOURCES: Final = ("services", "configurations", "routes", "revisions")


def client_config(
    *, ca_pem: bytes, path: str, url: str | None = None,
    service_namespace: str = "knative-serving", service_name: str = "webhook", service_port: int = 443,
) -> dict[str, Any]:
    config: dict[str, Any] = {"caBundle": base64.b64encode(ca_pem).decode()}
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
    *, ca_pem: bytes, url: str | None = None, name: str = VALIDATING_NAME,
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
    *, ca_pem: bytes, url: str | None = None, name: str = DEFAULTING_NAME,
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
