"""Small helpers for API objects held as JSON dicts: keys, owner references, conditions.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]


def namespace_of(obj: JSON) -> str:
    return str(obj.get("metadata", {}).get("namespace") or "")


def name_of(obj: JSON) -> str:
    return str(obj.get("metadata", {}).get("name") or "")


def uid_of(obj: JSON) -> str:
    return str(obj.get("metadata", {}).get("uid") or "")


def key_of(obj: JSON) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects), the queue and cache key."""
    namespace = namespace_of(obj)
    return f"{namespace}/{name_of(obj)}" if namespace else name_of(obj)


def split_key(key: str) -> tuple[str, str]:
    """The inverse of ``key_of``: ``("ns", "name")`` or ``("", "name")``."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def controller_of(obj: JSON) -> JSON | None:
    """The ownerReference with ``controller: true``, if any."""
    for reference in obj.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("controller"):
            return dict(reference)
    return None


def is_controlled_by(obj: JSON, owner_uid: str) -> bool:
    reference = controller_of(obj)
    return reference is not None and reference.get("uid") == owner_uid


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): much cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def deep_copy(obj: JSON) -> JSON:
    copied: JSON = copy_json(obj)
    return copied


def find_condition(obj: Mapping[str, Any], condition_type: str) -> JSON | None:
    """The status condition of ``condition_type`` (a copy), if the object has one."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type:
            return dict(condition)
    return None
