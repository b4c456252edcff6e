"""Field selectors: parse the string form the API uses and match objects against it.

A field selector is a comma-separated list of ``path=value``, ``path==value`` or
``path!=value`` terms over dotted field paths (``spec.nodeName=node-1``,
``metadata.name!=x``); ``\\``, ``,`` and ``=`` in a value are escaped with a backslash. A
field the object lacks has the empty value, so ``spec.nodeName=`` selects pods no node holds.
Which fields a resource may be selected by is the server's business; this module matches any
path. Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kube.objects import JSON


@dataclasses.dataclass(frozen=True, slots=True)
class FieldRequirement:
    path: str
    value: str
    equal: bool = True  # False: ``!=``

    def matches(self, obj: JSON) -> bool:
        return (field_value(obj, self.path) == self.value) == self.equal


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: JSON) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)


def field_value(obj: JSON, path: str) -> str:
    """The value at a dotted ``path`` as the API server renders it for selectors ("" if absent)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _terms(text: str) -> list[str]:
    """``text`` split at unescaped commas, escapes kept."""
    terms, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == ",":
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term.strip() for term in terms if term.strip()]


def _unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\\\", "\\")


def _requirement(term: str) -> FieldRequirement:
    for operator, equal in (("!=", False), ("==", True), ("=", True)):
        path, found, value = term.partition(operator)
        if found and path.strip():
            return FieldRequirement(path.strip(), _unescape(value.strip()), equal)
    raise ValueError(f"invalid field selector term {term!r}: want path=value, path==value or path!=value")


def parse_field_selector(text: str | None) -> FieldSelector:
    """The selector ``text`` stands for; None or "" selects everything. Raises ``ValueError``."""
    if not text:
        return FieldSelector()
    return FieldSelector(tuple(_requirement(term) for term in _terms(text)))
