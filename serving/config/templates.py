"""The subset of Go's text/template that Knative's name templates use.

Supported: literal text and actions ``{{.Field}}`` / ``{{ .Field }}`` where the field is a
top-level key (``.Name``, ``.Namespace``, ``.Domain``, ``.Tag``) or a map lookup
(``.Annotations.key``, ``.Labels.key``; keys with dots or slashes can be written
``{{index .Annotations "example.com/key"}}``). A missing map key renders as Go renders it for
``map[string]string``: the empty string. Pure; no side effects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_FIELD = re.compile(r"^\.([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_\-]+)*)$")
_INDEX = re.compile(r'^index\s+\.([A-Za-z_][A-Za-z0-9_]*)\s+"((?:[^"\\]|\\.)*)"$')


class TemplateError(ValueError):
    """A template outside the supported subset, or one that names an unknown field."""


def _lookup(action: str, values: Mapping[str, Any]) -> str:
    index = _INDEX.match(action)
    if index:
        container = values.get(index.group(1))
        if not isinstance(container, Mapping):
            raise TemplateError(f"can't index field {index.group(1)}")
        return str(container.get(index.group(2).replace('\\"', '"'), ""))
    field = _FIELD.match(action)
    if not field:
        raise TemplateError(f"unsupported template action {{{{{action}}}}}")
    name, rest = field.group(1), field.group(2)
    if name not in values:
        raise TemplateError(f"can't evaluate field {name}")
    value: Any = values[name]
    for key in [k for k in rest.split(".") if k]:
        if not isinstance(value, Mapping):
            raise TemplateError(f"can't evaluate field {key} in {name}")
        value = value.get(key, "")
    if isinstance(value, Mapping):
        raise TemplateError(f"field {name} is a map, not a string")
    return "" if value is None else str(value)


def render_template(template: str, values: Mapping[str, Any]) -> str:
    """Render ``template`` with ``values`` (strings, or maps for Annotations/Labels)."""
    if template.count("{{") != template.count("}}"):
        raise TemplateError(f"unbalanced braces in template {template!r}")
    return _ACTION.sub(lambda m: _lookup(m.group(1), values), template)


SAMPLE_VALUES: dict[str, Any] = {
    "Name": "name",
    "Namespace": "namespace",
    "Domain": "example.com",
    "Tag": "tag",
    "Annotations": {},
    "Labels": {},
}


def validate_template(template: str, values: Mapping[str, Any] | None = None) -> str | None:
    """None when ``template`` renders with sample values, else what is wrong with it."""
    try:
        render_template(template, SAMPLE_VALUES if values is None else values)
    except TemplateError as error:
        return f"invalid template {template!r}: {error}"
    return None
