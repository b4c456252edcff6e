"""The local image map: what to run for a container image, since there is no container engine.

A container that sets ``command`` runs exactly that. One that leaves ``command`` empty runs
what its image would run, found in the ConfigMap ``knserve-images`` (namespace
``knative-serving``). ConfigMap keys cannot hold image references (no ``/`` or ``:``), so
each entry has a free name as key and names its image in its value, a small YAML (or JSON)
document:

    data:
      queue-proxy: |
        image: ghcr.io/knserve/queue-proxy
        command: [knserve, queue-proxy]
      hello: '{"image": "ghcr.io/acme/hello", "command": "python3 -m hello", "args": ["--verbose"]}'

``command`` is the image's entrypoint and ``args`` its default arguments (its CMD, used only
when the container sets no ``args``); each is a list of strings or a command line split like
a POSIX shell splits it (but run without a shell). ``user`` (optional) is the image's USER:
``uid``, ``uid:gid``, ``name`` or ``name:group`` (names as this host knows them); containers
of the image run as that user unless their ``securityContext`` says otherwise. An image is
looked up as written, then without its digest, then without its tag, so
``ghcr.io/acme/hello`` also serves ``ghcr.io/acme/hello:v2`` and
``ghcr.io/acme/hello@sha256:...``.

Pure: parsing and lookup only.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

IMAGE_MAP_NAME = "knserve-images"
IMAGE_MAP_NAMESPACE = "knative-serving"


@dataclasses.dataclass(frozen=True)
class ImageEntrypoint:
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    user: str | None = None


class ImageMapError(ValueError):
    """An entry of the image map cannot be read; the message names its key."""


def _words(key: str, field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as error:
            raise ImageMapError(f"image map entry {key!r}: {field} is not a command line: {error}") from None
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        return tuple(value)
    raise ImageMapError(f"image map entry {key!r}: {field} must be a list of strings or a command line")


def parse_entry(key: str, value: str) -> tuple[str, ImageEntrypoint]:
    """One ConfigMap entry: (image reference, entrypoint)."""
    try:
        document = yaml.safe_load(value)
    except yaml.YAMLError:
        raise ImageMapError(f"image map entry {key!r} is not YAML or JSON") from None
    if not isinstance(document, dict):
        raise ImageMapError(f"image map entry {key!r} must be a mapping with image, command and args")
    image = document.get("image")
    if not isinstance(image, str) or not image:
        raise ImageMapError(f"image map entry {key!r} has no image")
    user = document.get("user")
    if user is not None and not isinstance(user, (str, int)):
        raise ImageMapError(f"image map entry {key!r}: user must be uid, uid:gid, name or name:group")
    entrypoint = ImageEntrypoint(_words(key, "command", document.get("command")), _words(key, "args", document.get("args")),
                                 str(user) if user is not None and str(user) != "" else None)
    if not entrypoint.command and not entrypoint.args:
        raise ImageMapError(f"image map entry {key!r} has neither command nor args")
    return image, entrypoint


def parse_map(data: Mapping[str, str]) -> tuple[dict[str, ImageEntrypoint], list[str]]:
    """Every readable entry by image, and a sentence for each unreadable one."""
    entries: dict[str, ImageEntrypoint] = {}
    problems: list[str] = []
    for key in sorted(data):
        try:
            image, entrypoint = parse_entry(key, data[key])
        except ImageMapError as error:
            problems.append(str(error))
            continue
        entries[image] = entrypoint
    return entries, problems


def reference_candidates(image: str) -> list[str]:
    """``image`` as written, without its digest, then without its tag (no duplicates)."""
    candidates = [image]
    name = image.split("@", 1)[0]
    candidates.append(name)
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        candidates.append(name[:colon])
    unique: list[str] = []
    for candidate in candidates:
        if candidate and candidate not in unique:
            unique.append(candidate)
    return unique


def lookup(entries: Mapping[str, ImageEntrypoint], image: str) -> ImageEntrypoint | None:
    """The entrypoint for ``image``, or None when the map has no entry for it."""
    for candidate in reference_candidates(image):
        if candidate in entries:
            return entries[candidate]
    return None


def command_line(container: Mapping[str, Any], entrypoint: ImageEntrypoint | None) -> list[str] | None:
    """What to execute, by Kubernetes' command/args rules; None when nothing says what to run.

    ``command`` replaces the image's entrypoint and drops its default args; ``args`` replaces
    the default args.
    """
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if command:
        return command + args
    if entrypoint is None:
        return None
    if entrypoint.command:
        return [*entrypoint.command, *(args if args else entrypoint.args)]
    chosen = args if args else list(entrypoint.args)
    return chosen or None
