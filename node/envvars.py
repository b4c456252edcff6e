"""A container's environment and command line, resolved the way the kubelet does it.

``expand`` is Kubernetes' ``$(VAR)`` expansion (``$$`` escapes, unknown references stay as
written); ``resolve_environment`` turns a container's ``env`` and ``envFrom`` into plain
strings from the pod (downward-API field references), the ConfigMaps and Secrets the caller
fetched, and the variables the node adds; ``referenced_objects`` says which ConfigMaps and
Secrets to fetch first. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping

from kube.objects import JSON


class ContainerConfigError(Exception):
    """The container cannot start because its configuration cannot be resolved.

    The message is what the container status shows (reason ``CreateContainerConfigError``).
    """


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand ``$(NAME)`` references in ``text``.

    ``$$`` gives a literal ``$``; a reference to an unknown name, an unclosed ``$(`` and a
    ``$`` before any other character are kept as written.
    """
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : close]
            if name in variables:
                out.append(variables[name])
            else:
                out.append(text[i : close + 1])
            i = close + 1
        else:
            out.append("$")
            out.append(following)
            i += 2
    return "".join(out)


def _label_map(values: Mapping[str, str]) -> str:
    """Labels and annotations the way the downward API formats them: ``key="value"`` lines."""
    lines = []
    for key in sorted(values):
        escaped = values[key].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{key}="{escaped}"')
    return "\n".join(lines)


def field_value(pod: JSON, field_path: str, *, pod_ip: str, host_ip: str) -> str:
    """The value of a downward-API ``fieldRef`` for ``pod``."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        values: Mapping[str, str] = metadata.get(source) or {}
        if field_path == prefix:
            return _label_map(values)
        if field_path.startswith(prefix + "['") and field_path.endswith("']"):
            return values.get(field_path[len(prefix) + 2 : -2], "")
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    raise ContainerConfigError(f'unsupported fieldRef fieldPath "{field_path}"')


def resource_value(container: JSON, resource: str, divisor: str | None) -> str:
    """A ``resourceFieldRef``: the container's request or limit, as written (no divisor math)."""
    section, _, name = resource.partition(".")
    resources = (container.get("resources") or {}).get(section) or {}
    value = resources.get(name)
    if value is None:
        return "0"
    return str(value)


@dataclasses.dataclass(frozen=True)
class References:
    """ConfigMaps and Secrets a container's environment reads, by name."""

    config_maps: frozenset[str]
    secrets: frozenset[str]


def referenced_objects(container: JSON) -> References:
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for source in container.get("envFrom") or []:
        if source.get("configMapRef"):
            config_maps.add(source["configMapRef"]["name"])
        if source.get("secretRef"):
            secrets.add(source["secretRef"]["name"])
    for variable in container.get("env") or []:
        value_from = variable.get("valueFrom") or {}
        if value_from.get("configMapKeyRef"):
            config_maps.add(value_from["configMapKeyRef"]["name"])
        if value_from.get("secretKeyRef"):
            secrets.add(value_from["secretKeyRef"]["name"])
    return References(frozenset(config_maps), frozenset(secrets))


def secret_strings(secret: JSON) -> dict[str, str]:
    """A Secret's ``data`` (base64) and ``stringData`` as plain strings."""
    values = {key: base64.b64decode(value).decode("utf-8", "replace") for key, value in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


def _key_ref(
    kind: str, ref: JSON, objects: Mapping[str, Mapping[str, str] | None], variable: str
) -> str | None:
    name = ref.get("name", "")
    key = ref.get("key", "")
    optional = bool(ref.get("optional", False))
    values = objects.get(name)
    if values is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind} "{name}" not found')
    if key not in values:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {name} (needed by env var {variable})")
    return values[key]


def resolve_environment(
    container: JSON,
    pod: JSON,
    *,
    pod_ip: str,
    host_ip: str,
    config_maps: Mapping[str, Mapping[str, str] | None],
    secrets: Mapping[str, Mapping[str, str] | None],
    node_variables: Mapping[str, str],
) -> dict[str, str]:
    """The container's variables in Kubernetes' order: node-provided, ``envFrom``, ``env``.

    ``config_maps`` and ``secrets`` map each referenced name to its string data, or to None
    when it does not exist. Values in ``env`` may use ``$(NAME)`` of anything defined before.
    """
    variables: dict[str, str] = dict(node_variables)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field, objects in (("configmap", "configMapRef", config_maps), ("secret", "secretRef", secrets)):
            ref = source.get(field)
            if not ref:
                continue
            values = objects.get(ref.get("name", ""))
            if values is None:
                if ref.get("optional", False):
                    continue
                raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
            for key, value in values.items():
                variables[prefix + key] = value
    for variable in container.get("env") or []:
        name = variable["name"]
        value_from = variable.get("valueFrom")
        if not value_from:
            variables[name] = expand(variable.get("value", "") or "", variables)
            continue
        resolved: str | None
        if value_from.get("fieldRef"):
            resolved = field_value(pod, value_from["fieldRef"]["fieldPath"], pod_ip=pod_ip, host_ip=host_ip)
        elif value_from.get("resourceFieldRef"):
            ref = value_from["resourceFieldRef"]
            resolved = resource_value(container, ref.get("resource", ""), ref.get("divisor"))
        elif value_from.get("configMapKeyRef"):
            resolved = _key_ref("configmap", value_from["configMapKeyRef"], config_maps, name)
        elif value_from.get("secretKeyRef"):
            resolved = _key_ref("secret", value_from["secretKeyRef"], secrets, name)
        else:
            raise ContainerConfigError(f"env var {name} has an unsupported valueFrom")
        if resolved is not None:
            variables[name] = resolved
    return variables


def expand_command_line(argv: list[str], variables: Mapping[str, str]) -> list[str]:
    """Expand ``$(VAR)`` in every word of a command line."""
    return [expand(word, variables) for word in argv]
