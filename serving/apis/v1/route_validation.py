"""Route and traffic validation (Knative's rules and wording). Pure; no side effects.

``default_configuration_name=True`` is the Service case: traffic targets may not name a
Configuration (the Service's own is implied) and an empty target means "the latest".
"""

from __future__ import annotations

from knserve.networking import SERVICE_LABEL
from serving.apis.field_error import (
    FieldError,
    err_disallowed_fields,
    err_generic,
    err_invalid_array_value,
    err_invalid_key_name,
    err_missing_field,
    err_missing_one_of,
    err_multiple_one_of,
    err_out_of_bounds_value,
    go_str,
)
from serving.apis.names import is_dns1035_label, is_qualified_name
from serving.apis.v1._metadata_validation import (
    validate_object_metadata,
    validate_rollout_duration_annotation,
    verify_label_owner_ref,
)
from serving.apis.v1.route_types import Route, TrafficTarget
from serving.config.snapshot import ConfigSnapshot


def validate_traffic_target(
    target: TrafficTarget, *, in_spec: bool = True, default_configuration_name: bool = False
) -> FieldError:
    errors = FieldError()
    # latestRevision must agree with whether a revision is pinned
    if in_spec and target.latest_revision is not None:
        pinned = bool(target.revision_name)
        if pinned == target.latest_revision:
            errors = err_generic(
                f'may not set revisionName "{target.revision_name or ""}" when latestRevision is '
                f"{go_str(target.latest_revision)}",
                "latestRevision",
            )
    # exactly one of revisionName / configurationName
    if default_configuration_name and target.configuration_name:
        errors = errors.also(err_disallowed_fields("configurationName"))
    elif target.revision_name and target.configuration_name:
        errors = errors.also(err_multiple_one_of("revisionName", "configurationName"))
    elif target.revision_name:
        problems = is_qualified_name(target.revision_name)
        if problems:
            errors = errors.also(err_invalid_key_name(target.revision_name, "revisionName", *problems))
    elif not in_spec:
        errors = errors.also(err_missing_field("revisionName"))
    elif target.configuration_name:
        problems = is_qualified_name(target.configuration_name)
        if problems:
            errors = errors.also(err_invalid_key_name(target.configuration_name, "configurationName", *problems))
    elif not default_configuration_name:
        errors = errors.also(err_missing_one_of("revisionName", "configurationName"))
    # percent within 0..100
    if target.percent is not None and not 0 <= target.percent <= 100:
        errors = errors.also(err_out_of_bounds_value(target.percent, 0, 100, "percent"))
    # url is output only
    if target.url:
        if in_spec:
            errors = errors.also(err_disallowed_fields("url"))
        if not target.tag:
            errors = errors.also(err_disallowed_fields("url"))
    elif target.tag and not in_spec:
        errors = errors.also(err_missing_field("url"))
    return errors


def validate_traffic_list(
    traffic: list[TrafficTarget] | None, *, in_spec: bool = True, default_configuration_name: bool = False
) -> FieldError:
    """Paths relative to the list (callers add ``traffic``)."""
    errors = FieldError()
    first_index: dict[str, int] = {}
    total = 0
    for i, target in enumerate(traffic or []):
        errors = errors.also(
            validate_traffic_target(target, in_spec=in_spec, default_configuration_name=default_configuration_name)
            .via_index(i)
        )
        total += target.percent or 0
        if not target.tag:
            continue
        problems = is_dns1035_label(target.tag)
        if problems:
            errors = errors.also(err_invalid_array_value(f"not a DNS 1035 label: {go_str(problems)}", "tag", i))
        if target.tag in first_index:
            errors = errors.also(FieldError(
                f'Multiple definitions for "{target.tag}"', (f"[{i}].tag", f"[{first_index[target.tag]}].tag")))
        else:
            first_index[target.tag] = i
    if total != 100:
        errors = errors.also(FieldError(f"Traffic targets sum to {total}, want 100", ("",)))
    return errors


def validate_route(route: Route, config: ConfigSnapshot, *, old: Route | None = None) -> FieldError:
    del old  # creator/lastModifier checks are not enforced by knserve
    errors = validate_object_metadata(route.metadata, config, allow_autoscaling_annotations=False)
    errors = errors.also(verify_label_owner_ref(route.metadata, SERVICE_LABEL, "Service").via_field("labels"))
    errors = errors.also(validate_rollout_duration_annotation(route.metadata.annotations).via_field("annotations"))
    errors = errors.via_field("metadata")
    return errors.also(validate_traffic_list(route.spec.traffic).via_field("traffic").via_field("spec"))
