"""A short, readable diff of two API objects, for Knative's "(-old +new)" error details.

The format follows the spirit of go-cmp's report that Knative prints: one block per changed
field path, ``-:`` old value and ``+:`` new value. Pure; no side effects.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

_MISSING = object()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return value


def _walk(path: str, old: Any, new: Any, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _walk(f"{path}.{key}" if path else key, old.get(key, _MISSING), new.get(key, _MISSING), out)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(f"{path}[{i}]", a, b, out)
        return
    if old == new:
        return
    lines = [f"{path}:"]
    if old is not _MISSING:
        lines.append(f"\t-: {json.dumps(old, sort_keys=True)}")
    if new is not _MISSING:
        lines.append(f"\t+: {json.dumps(new, sort_keys=True)}")
    out.append("\n".join(lines))


def short_diff(old: Any, new: Any, *, root: str = "") -> str:
    """Empty when equal; else one block per changed field (``path:`` then ``-:`` / ``+:``)."""
    out: list[str] = []
    _walk(root, _plain(old), _plain(new), out)
    return "\n".join(out)
