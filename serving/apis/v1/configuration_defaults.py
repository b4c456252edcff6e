"""Configuration defaults (Knative's): the template's RevisionSpec defaults, unless an update
keeps the template's BYO name (then the template is left exactly as written, so the
"changed without a name change" check sees the user's change). Pure; no side effects.
"""

from __future__ import annotations

from serving.apis.meta import ObjectMeta
from serving.apis.v1.configuration_types import Configuration, ConfigurationSpec
from serving.apis.v1.revision_defaults import default_revision_template
from serving.config.snapshot import ConfigSnapshot


def default_configuration_spec(
    spec: ConfigurationSpec,
    config: ConfigSnapshot,
    *,
    parent: ObjectMeta,
    old: ConfigurationSpec | None = None,
) -> ConfigurationSpec:
    if old is not None:
        new_name = spec.template.metadata.name
        if new_name and new_name == old.template.metadata.name:
            return spec
    template = default_revision_template(spec.template, config, parent=parent, in_create=old is None)
    return spec.model_copy(update={"template": template})


def default_configuration(
    configuration: Configuration, config: ConfigSnapshot, *, old: Configuration | None = None
) -> Configuration:
    result = configuration.model_copy(deep=True)
    result.spec = default_configuration_spec(
        configuration.spec, config, parent=configuration.metadata, old=old.spec if old is not None else None
    )
    return result
