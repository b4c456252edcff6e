"""A pod's volumes on the local node: each a directory of the pod, bind-mounted where its
containers ask for it.

Containers here are processes in the host's filesystem, so a volume is a directory under the
pod's state (``<pod>/volumes/<name>``) that each container sees at its ``volumeMounts`` path,
through a bind mount in the container's own mount namespace (``processes.preparing_container``;
the host's view is untouched, and a mount point the host lacks is made in that namespace only):

    emptyDir                  an empty directory, shared by the pod's containers
    configMap, secret         the keys (or ``items``) as files, written when the pod starts
    projected                 its configMap, secret and serviceAccountToken sources; the one
                              the ServiceAccount admission plugin adds (token, ca.crt,
                              namespace) is the pod's credentials directory, kept fresh
    hostPath                  the host path itself

Other kinds (downwardAPI, persistent volumes...) are empty directories, with a warning. A
mount that would hide the node's own files (its state directory, the Python installation
containers run from) is left out, with a warning: the container sees the host's path there.
ConfigMap and Secret volumes are not updated while the pod runs. ``subPath`` and
``readOnly`` are honoured.

Side effects: reads ConfigMaps and Secrets; writes files under the pod's directory.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from node.api import NodeApi
from node.processes import BindMount

log = logging.getLogger(__name__)


class VolumeUnavailable(Exception):
    """A volume's source (ConfigMap, Secret) cannot be read yet; the message says which."""


def _write_keys(directory: Path, data: Mapping[str, bytes], items: list[dict[str, Any]] | None, *, what: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    chosen = [(item["key"], item.get("path") or item["key"]) for item in items] if items else [(k, k) for k in data]
    for key, relative in chosen:
        if key not in data:
            raise VolumeUnavailable(f'{what} has no key "{key}"')
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[key])


async def _config_map(api: NodeApi, namespace: str, source: dict[str, Any]) -> dict[str, bytes] | None:
    data = await api.get_config_map_data(namespace, source["name"])
    return None if data is None else {k: v.encode() for k, v in data.items()}


async def _secret(api: NodeApi, namespace: str, source: dict[str, Any]) -> dict[str, bytes] | None:
    secret = await api.get_secret(namespace, source.get("secretName") or source.get("name", ""))
    if secret is None:
        return None
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


async def prepare_volumes(api: NodeApi, pod: dict[str, Any], root: Path,
                          credentials: Path | None) -> dict[str, Path]:
    """Make every volume of ``pod`` under ``root``; volume name -> its directory.
    Raises ``VolumeUnavailable`` when a ConfigMap or Secret it needs does not exist (yet)."""
    namespace = pod["metadata"]["namespace"]
    found: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        directory = root / name
        if "hostPath" in volume:
            found[name] = Path(volume["hostPath"]["path"])
            continue
        if "configMap" in volume or "secret" in volume:
            source = volume.get("configMap") or volume.get("secret") or {}
            kind = "ConfigMap" if "configMap" in volume else "Secret"
            data = await (_config_map if kind == "ConfigMap" else _secret)(api, namespace, source)
            what = f'{kind.lower()} "{source.get("name") or source.get("secretName")}"'
            if data is None:
                if source.get("optional"):
                    data = {}
                else:
                    raise VolumeUnavailable(f"volume {name}: {what} not found")
            _write_keys(directory, data, source.get("items"), what=what)
        elif "projected" in volume:
            sources = volume["projected"].get("sources") or []
            if credentials is not None and any("serviceAccountToken" in s for s in sources):
                found[name] = credentials  # token, ca.crt and namespace, refreshed by the credentials
                continue
            directory.mkdir(parents=True, exist_ok=True)
            for source in sources:
                if "configMap" in source:
                    data = await _config_map(api, namespace, source["configMap"])
                elif "secret" in source:
                    data = await _secret(api, namespace, source["secret"])
                else:
                    continue
                spec = source.get("configMap") or source.get("secret") or {}
                if data is None and not spec.get("optional"):
                    raise VolumeUnavailable(f'volume {name}: {next(iter(source))} "{spec.get("name")}" not found')
                _write_keys(directory, data or {}, spec.get("items"), what=f'{next(iter(source))} "{spec.get("name")}"')
        else:
            if "emptyDir" not in volume:
                log.warning("%s/%s: volume %s is of a kind the local node does not support; it is an empty directory",
                            namespace, pod["metadata"]["name"], name)
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o777)  # writable whatever user the containers run as, as a kubelet makes it
        found[name] = directory
    return found


def hides(target: str, protected: Iterable[Path]) -> Path | None:
    """The first of ``protected`` a mount at ``target`` would hide (``target`` is it or a parent)."""
    where = Path(target)
    for path in protected:
        if path == where or where in path.parents:
            return path
    return None


def container_mounts(container: dict[str, Any], volumes: Mapping[str, Path],
                     protected: Iterable[Path] = ()) -> list[BindMount]:
    """The bind mounts for ``container``'s ``volumeMounts`` (unknown volumes are skipped).

    A container here runs from the host's filesystem: a mount that would hide one of the
    ``protected`` paths (the node's state, the Python installation the containers run from)
    is left out with a warning, and the container sees the host's directory there."""
    protected = list(protected)
    mounts = []
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"])
        if source is None:
            continue
        hidden = hides(mount["mountPath"], protected)
        if hidden is not None:
            log.warning("container %s: volume %s is not mounted at %s, which would hide %s on this node",
                        container.get("name"), mount["name"], mount["mountPath"], hidden)
            continue
        if mount.get("subPath"):
            source = source / mount["subPath"]
            if not source.exists():
                source.mkdir(parents=True, exist_ok=True)
        mounts.append(BindMount(mount["mountPath"], source, bool(mount.get("readOnly"))))
    return mounts

