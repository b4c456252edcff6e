"""Pure admission review functions: AdmissionReview v1 request in, response out.

``admit(review, config, mutate=...)`` answers one review:

* defaulting (``mutate=True``): Knative's defaults for Service, Configuration, Revision and
  Route, plus the ``serving.knative.dev/creator`` / ``lastModifier`` annotations, returned
  as a JSON Patch;
* validation (``mutate=False``): every Knative rule (``serving.apis.v1.*_validation``); a
  denial carries Knative's error text after ``validation failed: ``, warnings go to the
  response's ``warnings``.

Status-subresource writes and DELETE/CONNECT pass untouched, as in Knative; so does an object
defaulting cannot read (a wrong type), which the CRD schema then refuses. No I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError

from knserve.networking import CREATOR_ANNOTATION, UPDATER_ANNOTATION
from serving.apis.field_error import FieldError
from serving.apis.meta import ApiObject
from serving.apis.v1.configuration_defaults import default_configuration
from serving.apis.v1.configuration_types import Configuration
from serving.apis.v1.configuration_validation import validate_configuration
from serving.apis.v1.revision_defaults import default_revision
from serving.apis.v1.revision_types import Revision
from serving.apis.v1.revision_validation import validate_revision
from serving.apis.v1.route_defaults import default_route
from serving.apis.v1.route_types import Route
from serving.apis.v1.route_validation import validate_route
from serving.apis.v1.service_defaults import default_service
from serving.apis.v1.service_types import Service
from serving.apis.v1.service_validation import validate_service
from serving.config.snapshot import ConfigSnapshot
from serving.webhook import jsonpatch

VALIDATION_PATH: Final = "/resource-validation"
DEFAULTING_PATH: Final = "/defaulting"
GROUP: Final = "serving.knative.dev"


class _Kind:
    def __init__(
        self,
        model: type[ApiObject],
        default: Callable[..., Any],
        validate: Callable[..., FieldError],
        *,
        user_info: str,
    ) -> None:
        self.model = model
        self.default = default
        self.validate = validate
        # "always": Service; "unowned": Configuration and Route made by users, not by a Service
        self.user_info = user_info


KINDS: Final[dict[str, _Kind]] = {
    "Service": _Kind(Service, default_service, validate_service, user_info="always"),
    "Configuration": _Kind(Configuration, default_configuration, validate_configuration, user_info="unowned"),
    "Route": _Kind(Route, default_route, validate_route, user_info="unowned"),
    "Revision": _Kind(Revision, default_revision, validate_revision, user_info="never"),
}


def _response(uid: str, *, allowed: bool = True, message: str | None = None, code: int = 400,
              patch: jsonpatch.Patch | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"status": "Failure", "message": message or "", "reason": "BadRequest", "code": code}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def denied(review: dict[str, Any], message: str) -> dict[str, Any]:
    """A refusal of ``review`` with ``message``."""
    return _response(str((review.get("request") or {}).get("uid", "")), allowed=False, message=message)


def _parse_error(kind: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        problems.append(f"{where}: {item['msg']}")
    return f"could not read the {kind}: " + "; ".join(problems)


def _with_user_info(
    kind: _Kind, new: ApiObject, old: ApiObject | None, username: str | None, spec_changed: bool
) -> ApiObject:
    if not username or kind.user_info == "never":
        return new
    if kind.user_info == "unowned" and new.metadata.owner_references:
        return new
    annotations = dict(new.metadata.annotations or {})
    if old is None:
        annotations[CREATOR_ANNOTATION] = username
        annotations[UPDATER_ANNOTATION] = username
    elif spec_changed:
        annotations[UPDATER_ANNOTATION] = username
    else:
        return new
    new.metadata.annotations = annotations
    return new


def admit(review: dict[str, Any], config: ConfigSnapshot, *, mutate: bool) -> dict[str, Any]:
    """The AdmissionReview response for ``review`` (defaulting when ``mutate``, else validation)."""
    request = review.get("request") or {}
    uid = str(request.get("uid", ""))
    operation = request.get("operation")
    resource_kind = (request.get("kind") or {}).get("kind", "")
    group = (request.get("kind") or {}).get("group", "")
    if operation not in ("CREATE", "UPDATE") or request.get("subResource") or group != GROUP:
        return _response(uid)
    kind = KINDS.get(resource_kind)
    if kind is None:
        return _response(uid)
    raw = request.get("object") or {}
    raw_old = request.get("oldObject") if operation == "UPDATE" else None
    try:
        new = kind.model.model_validate(raw)
        old = kind.model.model_validate(raw_old) if raw_old else None
    except ValidationError as error:
        if mutate:
            # Defaulting runs before the API server checks the CRD's schema: let the object
            # through untouched so the schema refuses a wrong type in the API server's own words
            # (``spec.template.spec.containerConcurrency: Invalid value: "string": ... must be
            # of type integer``); validation, which runs after the schema, still refuses it.
            return _response(uid)
        return _response(uid, allowed=False, message=_parse_error(resource_kind, error))

    if mutate:
        defaulted = kind.default(new, config, old=old)
        spec_changed = old is None or old.model_dump(include={"spec"}) != defaulted.model_dump(include={"spec"})
        username = (request.get("userInfo") or {}).get("username")
        defaulted = _with_user_info(kind, defaulted, old, username, spec_changed)
        before = new.to_dict()
        after = defaulted.to_dict()
        patch = jsonpatch.diff(
            {"spec": before.get("spec", {}), "annotations": before.get("metadata", {}).get("annotations")},
            {"spec": after.get("spec", {}), "annotations": after.get("metadata", {}).get("annotations")},
        )
        return _response(uid, patch=_rebase(patch, raw))

    errors = kind.validate(new, config, old=old)
    warnings_error = errors.filter("Warning")
    warnings = [str(w) for w in warnings_error.wrapped_errors()] if warnings_error else None
    failures = errors.filter("Error")
    if failures is not None:
        return _response(uid, allowed=False, message=f"validation failed: {failures}", warnings=warnings)
    return _response(uid, warnings=warnings)


def _rebase(patch: jsonpatch.Patch, raw: dict[str, Any]) -> jsonpatch.Patch:
    """Move the ``/spec`` and ``/annotations`` operations onto the real object's paths, adding
    any parent the object lacks (a JSON Patch cannot replace what is not there)."""
    rebased: jsonpatch.Patch = []
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None
    for op in patch:
        path = op["path"]
        if path.startswith("/annotations"):
            if metadata is None:
                rebased.append({"op": "add", "path": "/metadata", "value": {}})
                metadata = {}
            path = "/metadata" + path
            if path == "/metadata/annotations" and op["op"] == "replace":
                op = {**op, "op": "add"}
        elif path == "/spec" and op["op"] == "replace" and "spec" not in raw:
            op = {**op, "op": "add"}
        elif path.startswith("/spec/") and "spec" not in raw:
            rebased.append({"op": "add", "path": "/spec", "value": {}})
            raw = {**raw, "spec": {}}
        rebased.append({**op, "path": path})
    return rebased
