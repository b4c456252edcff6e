"""Metadata rules shared by every kind: names, owner-checked labels, Knative annotations.

Paths are relative to ``metadata``. Pure; no side effects.
"""

from __future__ import annotations

from collections.abc import Mapping

from knserve.networking import (
    PROGRESS_DEADLINE_ANNOTATION,
    ROLLOUT_DURATION_ANNOTATION,
)
from serving.apis.autoscaling.annotations import validate_annotations, validate_has_no_autoscaling_annotation
from serving.apis.field_error import FieldError, err_invalid_value, err_missing_field, go_str
from serving.apis.meta import ObjectMeta
from serving.apis.names import name_is_dns1035_label
from serving.config.parsers import parse_go_duration
from serving.config.snapshot import ConfigSnapshot


def validate_object_name(metadata: ObjectMeta) -> FieldError:
    """knative.dev/pkg ``apis.ValidateObjectMetadata``."""
    if metadata.generate_name:
        problems = name_is_dns1035_label(metadata.generate_name, True)
        if problems:
            return FieldError(f"not a DNS 1035 label prefix: {go_str(problems)}", ("generateName",))
    if metadata.name:
        problems = name_is_dns1035_label(metadata.name, False)
        if problems:
            return FieldError(f"not a DNS 1035 label: {go_str(problems)}", ("name",))
    if not metadata.generate_name and not metadata.name:
        return FieldError("name or generateName is required", ("name",))
    return FieldError()


def validate_object_metadata(
    metadata: ObjectMeta, config: ConfigSnapshot, *, allow_autoscaling_annotations: bool
) -> FieldError:
    errors = validate_object_name(metadata)
    if allow_autoscaling_annotations:
        errors = errors.also(validate_annotations(metadata.annotations, config.autoscaler).via_field("annotations"))
    else:
        errors = errors.also(validate_has_no_autoscaling_annotation(metadata.annotations).via_field("annotations"))
    return errors


def verify_label_owner_ref(metadata: ObjectMeta, label: str, kind: str) -> FieldError:
    value = metadata.label(label)
    if value is None:
        return FieldError()
    for ref in metadata.owner_references or []:
        if ref.kind == kind and ref.name == value:
            return FieldError()
    return err_missing_field(label)


def _validate_duration_annotation(annotations: Mapping[str, str] | None, key: str, name: str) -> FieldError:
    value = (annotations or {}).get(key, "")
    if not value:
        return FieldError()
    try:
        seconds = parse_go_duration(value)
    except ValueError:
        return err_invalid_value(value, key)
    if round(seconds) != seconds:
        return FieldError(f"{name}={value} is not at second precision", (key,))
    if seconds < 0:
        return FieldError(f"{name}={value} must be positive", (key,))
    return FieldError()


def validate_rollout_duration_annotation(annotations: Mapping[str, str] | None) -> FieldError:
    return _validate_duration_annotation(annotations, ROLLOUT_DURATION_ANNOTATION, "rollout-duration")


def validate_progress_deadline_annotation(annotations: Mapping[str, str] | None) -> FieldError:
    return _validate_duration_annotation(annotations, PROGRESS_DEADLINE_ANNOTATION, "progress-deadline")
