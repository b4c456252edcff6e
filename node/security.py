"""Who a container's process runs as: its ``securityContext`` read the way the kubelet reads it.

``container_identity`` resolves the user, group and supplementary groups of a container from
the container's ``securityContext``, the pod's (``runAsUser``, ``runAsGroup``,
``supplementalGroups``, ``fsGroup``) and the image's user from the image map, and applies
``runAsNonRoot`` with the kubelet's own refusals. Names (an image user such as ``nobody``)
are resolved through this host's user and group databases, since a container here runs on
the host's filesystem. What the node cannot honour raises ``IdentityRefused``, whose message
becomes the container's ``CreateContainerConfigError``.

Pure apart from reading the host's passwd and group databases.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Mapping
from typing import Any

from node.processes import Identity

ROOT = 0


class IdentityRefused(Exception):
    """The container cannot run as its securityContext asks; the message says why."""


def _context_value(field: str, container: Mapping[str, Any], pod: Mapping[str, Any]) -> Any:
    """A field of the container's securityContext, else of the pod's."""
    own = container.get("securityContext") or {}
    if own.get(field) is not None:
        return own[field]
    return ((pod.get("spec") or {}).get("securityContext") or {}).get(field)


def _user_id(name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise IdentityRefused(f'the image\'s user "{name}" does not exist on this node') from None


def _group_id(name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise IdentityRefused(f'the image\'s group "{name}" does not exist on this node') from None


def _primary_group(uid: int) -> int:
    """The group of ``uid`` in the user database (0 when it has no entry, as in an image)."""
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return ROOT


def container_identity(pod: Mapping[str, Any], container: Mapping[str, Any], *,
                       image_user: str | None) -> Identity | None:
    """The identity to run ``container`` as, or None to run it as the node agent does (root,
    with nothing to change). Raises ``IdentityRefused``."""
    metadata = pod.get("metadata") or {}
    where = (f'pod: "{metadata.get("name")}_{metadata.get("namespace")}({metadata.get("uid")})", '
             f'container: {container.get("name")}')
    run_as_user = _context_value("runAsUser", container, pod)
    run_as_group = _context_value("runAsGroup", container, pod)
    image_uid: int | None = None
    image_gid: int | None = None
    image_name, _, image_group = (image_user or "").partition(":")
    if run_as_user is None and image_name:
        if _context_value("runAsNonRoot", container, pod) and not image_name.isdigit():
            # The kubelet's own words: it cannot look inside the image for the name.
            try:
                pwd.getpwnam(image_name)
            except KeyError:
                raise IdentityRefused(f"container has runAsNonRoot and image has non-numeric user ({image_name}), "
                                      f"cannot verify user is non-root ({where})") from None
        image_uid = _user_id(image_name)
        if image_group:
            image_gid = _group_id(image_group)
    uid = int(run_as_user) if run_as_user is not None else image_uid
    if _context_value("runAsNonRoot", container, pod):
        if run_as_user is not None and int(run_as_user) == ROOT:
            raise IdentityRefused(f"container's runAsUser breaks non-root policy ({where})")
        if uid is None or uid == ROOT:
            raise IdentityRefused(f"container has runAsNonRoot and image will run as root ({where})")
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    groups = [int(g) for g in pod_context.get("supplementalGroups") or []]
    if pod_context.get("fsGroup") is not None:
        groups.append(int(pod_context["fsGroup"]))
    if uid is None and run_as_group is None and not groups:
        return None
    uid = ROOT if uid is None else uid
    if run_as_group is not None:
        gid = int(run_as_group)
    elif image_gid is not None:
        gid = image_gid
    else:
        gid = _primary_group(uid)
    return Identity(uid=uid, gid=gid, groups=tuple(dict.fromkeys([gid, *groups])))


__all__ = ["IdentityRefused", "container_identity"]
