"""Label selectors: parse the string form the API uses and match label maps against it.

Supports equality (``a=b``, ``a==b``, ``a!=b``), existence (``a``, ``!a``) and set
(``a in (x,y)``, ``a notin (x,y)``) requirements. Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


@dataclasses.dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "exists", "!exists", "in", "notin"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!exists":
                return not present
        raise ValueError(f"unknown selector operator {self.operator!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        parts = []
        for requirement in self.requirements:
            values = sorted(requirement.values)
            match requirement.operator:
                case "=":
                    parts.append(f"{requirement.key}={values[0]}")
                case "!=":
                    parts.append(f"{requirement.key}!={values[0]}")
                case "exists":
                    parts.append(requirement.key)
                case "!exists":
                    parts.append(f"!{requirement.key}")
                case op:
                    parts.append(f"{requirement.key} {op} ({','.join(values)})")
        return ",".join(parts)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_selector(text: str | None) -> Selector:
    """Parse ``app=x,tier!=db,!legacy,env in (a,b)``; an empty string selects everything."""
    if not text:
        return Selector()
    requirements = []
    for part in _split_top_level(text):
        if set_match := _SET_RE.match(part):
            key, operator, raw = set_match.groups()
            values = frozenset(v.strip() for v in raw.split(",") if v.strip())
            requirements.append(Requirement(key, operator, values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append(Requirement(key.strip(), "!=", frozenset({value.strip()})))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            requirements.append(Requirement(key.strip(), "=", frozenset({value.strip()})))
        elif part.startswith("!"):
            requirements.append(Requirement(part[1:].strip(), "!exists"))
        else:
            requirements.append(Requirement(part, "exists"))
    return Selector(tuple(requirements))


def selector_from_labels(labels: Mapping[str, str]) -> Selector:
    return Selector(tuple(Requirement(k, "=", frozenset({v})) for k, v in sorted(labels.items())))
