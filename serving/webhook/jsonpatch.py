"""A minimal RFC 6902 JSON Patch between two JSON documents (add / replace / remove).

Lists of equal length are compared item by item; lists that changed length are replaced
whole, which keeps patches correct without a list-diff algorithm. Pure; no side effects.
"""

from __future__ import annotations

from typing import Any

Patch = list[dict[str, Any]]


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> Patch:
    """Operations that turn ``old`` into ``new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: Patch = []
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key, value in new.items():
            child = f"{path}/{escape(key)}"
            if key not in old:
                ops.append({"op": "add", "path": child, "value": value})
            else:
                ops.extend(diff(old[key], value, child))
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        ops = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            ops.extend(diff(a, b, f"{path}/{i}"))
        return ops
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path, "value": new}]


def apply(document: Any, patch: Patch) -> Any:
    """Apply ``patch`` (only the operations ``diff`` makes) to a copy of ``document``."""
    import copy

    result = copy.deepcopy(document)
    for op in patch:
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        if not tokens:
            result = copy.deepcopy(op["value"])
            continue
        parent = result
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last: Any = int(tokens[-1]) if isinstance(parent, list) else tokens[-1]
        if op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return result
