"""Knative's PodSpec dry run: the Pod a Service's or Configuration's template would make, for
the API server to validate (``create`` with ``dryRun=All``) before the change is admitted, so
fields whose validity only Kubernetes knows are refused at ``kubectl apply`` (and at
``--dry-run=server``) instead of failing the Revision later.

When, as in Knative: ``config-features``' ``kubernetes.podspec-dryrun`` ``Enabled`` (always),
``Allowed`` (the default: when the object's annotation ``features.knative.dev/podspec-dryrun``
is ``enabled`` or ``strict``), ``Disabled`` (never). The refusal reads as Knative's:
``dry run failed with <the API server's answer>: spec.template``; an API server that cannot
dry-run (another webhook without ``sideEffects: None``), or that does not let the webhook's
account create Pods (it needs ``create`` on ``pods``, as Knative's webhook has), lets the
change through with a warning in the log unless the mode is ``strict``.

``dry_run_pod`` is pure; ``check_pod`` does the one API call.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from pydantic import ValidationError

from kube.client import KubeClient
from kube.errors import ApiError
from kube.resources import PODS
from serving.apis.meta import ObjectMeta
from serving.apis.v1 import Configuration, Revision, Service
from serving.apis.v1.revision_defaults import default_revision_spec
from serving.config import features
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.revision.resources.deployment import make_deployment

DRY_RUN_ANNOTATION: Final = "features.knative.dev/podspec-dryrun"
MODE_ENABLED: Final = "enabled"
MODE_STRICT: Final = "strict"
POD_NAME_PREFIX: Final = "dry-run-validation"
_UNSUPPORTED: Final = "does not support dry run"
FORBIDDEN: Final = 403

log = logging.getLogger(__name__)


def dry_run_mode(annotations: dict[str, str] | None, config: ConfigSnapshot) -> str | None:
    """``enabled``/``strict`` when the template's Pod is to be dry-run, else None."""
    flag = config.features.flag(features.DRY_RUN)
    mode = (annotations or {}).get(DRY_RUN_ANNOTATION, "")
    if flag == features.DISABLED:
        return None
    if flag == features.ENABLED and mode != MODE_STRICT:
        mode = MODE_ENABLED
    return mode if mode in (MODE_ENABLED, MODE_STRICT) else None


def dry_run_pod(review: dict[str, Any], config: ConfigSnapshot) -> tuple[dict[str, Any], str] | None:
    """(the Pod to dry-run, the mode) for a Service or Configuration create/update, else None."""
    request = review.get("request") or {}
    kind = (request.get("kind") or {}).get("kind")
    if request.get("operation") not in ("CREATE", "UPDATE") or request.get("subResource"):
        return None
    if kind not in ("Service", "Configuration"):
        return None
    try:
        raw = request.get("object") or {}
        parsed = Service.model_validate(raw) if kind == "Service" else Configuration.model_validate(raw)
    except ValidationError:
        return None
    template = parsed.spec.template
    mode = dry_run_mode(parsed.metadata.annotations, config)
    if mode is None:
        return None
    namespace = request.get("namespace") or parsed.metadata.namespace or ""
    metadata = ObjectMeta(name=POD_NAME_PREFIX, namespace=namespace, labels=template.metadata.labels,
                          annotations=template.metadata.annotations)
    revision = Revision(metadata=metadata, spec=default_revision_spec(template.spec, config, parent=parsed.metadata))
    pod_spec = make_deployment(revision, config)["spec"]["template"]["spec"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": POD_NAME_PREFIX, "namespace": namespace}, "spec": pod_spec}
    return pod, mode


async def check_pod(client: KubeClient, pod: dict[str, Any], mode: str) -> str | None:
    """Knative's refusal when the API server refuses ``pod`` on a dry run, else None."""
    try:
        await client.create(PODS, pod, dry_run=True)
    except ApiError as error:
        cannot_try = _UNSUPPORTED in str(error) or error.status == FORBIDDEN
        if mode != MODE_STRICT and cannot_try:
            log.warning("podspec dry run not possible, change admitted without it: %s", error)
            return None
        return f"dry run failed with {error}: spec.template"
    return None
