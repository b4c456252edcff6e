"""Service validation (Knative's rules and wording). Pure; no side effects."""

from __future__ import annotations

from collections.abc import Mapping

from knserve.callpolicy import PolicyError, parse_policy
from serving.apis.field_error import FieldError
from serving.apis.v1._metadata_validation import validate_object_metadata, validate_rollout_duration_annotation
from serving.apis.v1.service_canary import CanaryPolicyError, parse_canary_policy
from serving.apis.v1.revision_validation import validate_revision_template, verify_template_name_change
from serving.apis.v1.route_validation import validate_traffic_list
from serving.apis.v1.service_types import Service
from serving.config.snapshot import ConfigSnapshot


def validate_async_annotations(annotations: Mapping[str, str] | None) -> FieldError:
    """The call queue's ``knserve.dev/async*`` annotations (``knserve.callpolicy``), every bad one."""
    try:
        parse_policy(annotations)
    except PolicyError as error:
        return FieldError().also(*(FieldError(issue.message, issue.annotations) for issue in error.issues))
    return FieldError()


def validate_canary_annotations(annotations: Mapping[str, str] | None) -> FieldError:
    """The ``knserve.dev/canary-*`` annotations (``service_canary``), every bad one."""
    try:
        parse_canary_policy(annotations)
    except CanaryPolicyError as error:
        return FieldError().also(*(FieldError(issue.message, (issue.annotation,)) for issue in error.issues))
    return FieldError()


def validate_service(service: Service, config: ConfigSnapshot, *, old: Service | None = None) -> FieldError:
    errors = validate_object_metadata(service.metadata, config, allow_autoscaling_annotations=False)
    errors = errors.also(validate_rollout_duration_annotation(service.metadata.annotations).via_field("annotations"))
    errors = errors.also(validate_async_annotations(service.metadata.annotations).via_field("annotations"))
    errors = errors.also(validate_canary_annotations(service.metadata.annotations).via_field("annotations"))
    errors = errors.via_field("metadata")
    spec_errors = validate_revision_template(service.spec.template, config, parent=service.metadata).via_field("template")
    spec_errors = spec_errors.also(
        validate_traffic_list(service.spec.traffic, default_configuration_name=True).via_field("traffic")
    )
    errors = errors.also(spec_errors.via_field("spec"))
    if old is not None:
        errors = errors.also(verify_template_name_change(service.spec.template, old.spec.template).via_field("spec.template"))
    return errors
