"""Revision, RevisionTemplateSpec and RevisionSpec validation (Knative's rules and wording).

``validate_revision(revision, config, old=None)`` returns a ``FieldError`` (empty when valid);
``str(error)`` renders it as Knative does. Pure; no side effects.
"""

from __future__ import annotations

from knserve.networking import CONFIGURATION_LABEL
from serving.apis.autoscaling.annotations import validate_annotations
from serving.apis.diff import short_diff
from serving.apis.field_error import (
    FieldError,
    err_disallowed_fields,
    err_invalid_value,
    err_out_of_bounds_value,
    go_str,
)
from serving.apis.meta import ObjectMeta
from serving.apis.names import name_is_dns1035_label
from serving.apis.v1._metadata_validation import (
    validate_object_metadata,
    validate_progress_deadline_annotation,
    verify_label_owner_ref,
)
from serving.apis.v1.podspec_validation import validate_pod_spec
from serving.apis.v1.revision_types import Revision, RevisionSpec, RevisionTemplateSpec
from serving.config.snapshot import ConfigSnapshot


def validate_timeout_seconds(timeout_seconds: int, config: ConfigSnapshot) -> FieldError:
    maximum = config.defaults.max_revision_timeout_seconds
    if timeout_seconds != 0 and (timeout_seconds > maximum or timeout_seconds < 0):
        return err_out_of_bounds_value(timeout_seconds, 0, maximum, "timeoutSeconds")
    return FieldError()


def validate_container_concurrency(container_concurrency: int | None, config: ConfigSnapshot) -> FieldError:
    """Path is the current field; callers add ``containerConcurrency``."""
    if container_concurrency is None:
        return FieldError()
    minimum = 0 if config.defaults.allow_container_concurrency_zero else 1
    maximum = config.defaults.container_concurrency_max_limit
    if container_concurrency < minimum or container_concurrency > maximum:
        return err_out_of_bounds_value(container_concurrency, minimum, maximum, "")
    return FieldError()


def validate_revision_spec(spec: RevisionSpec, config: ConfigSnapshot) -> FieldError:
    errors = validate_pod_spec(spec, config.features)
    if spec.timeout_seconds is not None:
        errors = errors.also(validate_timeout_seconds(spec.timeout_seconds, config))
    if spec.container_concurrency is not None:
        errors = errors.also(
            validate_container_concurrency(spec.container_concurrency, config).via_field("containerConcurrency")
        )
    return errors


def validate_revision_name(name: str, generate_name: str, parent: ObjectMeta | None) -> FieldError:
    """A BYO revision name must be a DNS-1035 label starting with ``<parent>-``."""
    if generate_name:
        problems = name_is_dns1035_label(generate_name, True)
        if problems:
            return err_invalid_value(f"not a DNS 1035 label prefix: {go_str(problems)}", "metadata.generateName")
    if name:
        problems = name_is_dns1035_label(name, False)
        if problems:
            return err_invalid_value(f"not a DNS 1035 label: {go_str(problems)}", "metadata.name")
        parent = parent or ObjectMeta()
        prefix = (parent.name or "") + "-"
        if not parent.name and parent.generate_name:
            return err_disallowed_fields("metadata.name")
        if not name.startswith(prefix):
            return err_invalid_value(f'"{name}" must have prefix "{prefix}"', "metadata.name")
    return FieldError()


def validate_revision_template(
    template: RevisionTemplateSpec, config: ConfigSnapshot, *, parent: ObjectMeta | None
) -> FieldError:
    """Paths relative to the template (callers add ``spec.template``)."""
    annotations = template.metadata.annotations
    errors = validate_revision_spec(template.spec, config).via_field("spec")
    errors = errors.also(validate_annotations(annotations, config.autoscaler).via_field("metadata.annotations"))
    errors = errors.also(validate_revision_name(template.metadata.name or "", template.metadata.generate_name or "", parent))
    errors = errors.also(validate_progress_deadline_annotation(annotations).via_field("metadata.annotations"))
    return errors


def verify_template_name_change(new: RevisionTemplateSpec, old: RevisionTemplateSpec) -> FieldError:
    """A template that keeps its (BYO) name may not change; paths relative to the template."""
    if not new.metadata.name or new.metadata.name != old.metadata.name:
        return FieldError()
    diff = short_diff(old, new, root="{v1.RevisionTemplateSpec}")
    if diff:
        return FieldError("Saw the following changes without a name change (-old +new)", ("metadata.name",), diff)
    return FieldError()


def validate_revision(revision: Revision, config: ConfigSnapshot, *, old: Revision | None = None) -> FieldError:
    errors = validate_object_metadata(revision.metadata, config, allow_autoscaling_annotations=True)
    errors = errors.also(verify_label_owner_ref(revision.metadata, CONFIGURATION_LABEL, "Configuration").via_field("labels"))
    errors = errors.via_field("metadata")
    if old is not None:
        diff = short_diff(old.spec, revision.spec, root="{v1.RevisionSpec}")
        if diff:
            return FieldError("Immutable fields changed (-old +new)", ("spec",), diff)
        return errors
    return errors.also(validate_revision_spec(revision.spec, config).via_field("spec"))
