"""Configuration validation (Knative's rules and wording). Pure; no side effects."""

from __future__ import annotations

from knserve.networking import SERVICE_LABEL
from serving.apis.field_error import FieldError
from serving.apis.v1._metadata_validation import validate_object_metadata, verify_label_owner_ref
from serving.apis.v1.configuration_types import Configuration
from serving.apis.v1.revision_validation import validate_revision_template, verify_template_name_change
from serving.config.snapshot import ConfigSnapshot


def validate_configuration(
    configuration: Configuration, config: ConfigSnapshot, *, old: Configuration | None = None
) -> FieldError:
    errors = validate_object_metadata(configuration.metadata, config, allow_autoscaling_annotations=False)
    errors = errors.also(verify_label_owner_ref(configuration.metadata, SERVICE_LABEL, "Service").via_field("labels"))
    errors = errors.via_field("metadata")
    errors = errors.also(
        validate_revision_template(configuration.spec.template, config, parent=configuration.metadata)
        .via_field("template")
        .via_field("spec")
    )
    if old is not None:
        errors = errors.also(
            verify_template_name_change(configuration.spec.template, old.spec.template).via_field("spec.template")
        )
    return errors
