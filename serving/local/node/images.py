"""The local image map: what to run for a container image, since there is no container engine.

A container that sets ``command`` runs exactly that. One that leaves ``command`` empty runs
what its image would run, looked up in the ConfigMap ``knserve-images`` (namespace
``knative-serving``). Each data key is an image reference; each value is one of

* a JSON list of strings: the image's entrypoint, e.g. ``["python3", "-m", "app"]``;
* a JSON object ``{"command": [...], "args": [...]}``: entrypoint and default arguments
  (the image's CMD, used only when the container sets no ``args``);
* any other string: the entrypoint as a shell-style command line, split like a POSIX shell
  would split it (``python3 -m app``), but run without a shell.

A reference is looked up as written, then without its digest, then without its tag, so the
key ``ghcr.io/acme/app`` also serves ``ghcr.io/acme/app:v2`` and ``ghcr.io/acme/app@sha256:..``.
Pure: parsing and lookup only.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping
from typing import Any

IMAGE_MAP_NAME = "knserve-images"
IMAGE_MAP_NAMESPACE = "knative-serving"


@dataclasses.dataclass(frozen=True)
class ImageEntrypoint:
    command: tuple[str, ...]
    args: tuple[str, ...] = ()


class ImageMapError(ValueError):
    """A value in the image map is not a command line; the message names the key."""


def parse_entry(image: str, value: str) -> ImageEntrypoint:
    text = value.strip()
    if text.startswith("[") or text.startswith("{"):
        try:
            parsed: Any = json.loads(text)
        except json.JSONDecodeError as error:
            raise ImageMapError(f"image map entry {image!r} is not valid JSON: {error.msg}") from None
        if isinstance(parsed, list) and parsed and all(isinstance(word, str) for word in parsed):
            return ImageEntrypoint(tuple(parsed))
        if isinstance(parsed, dict):
            command = parsed.get("command") or []
            args = parsed.get("args") or []
            if (
                isinstance(command, list)
                and isinstance(args, list)
                and all(isinstance(word, str) for word in [*command, *args])
                and (command or args)
            ):
                return ImageEntrypoint(tuple(command), tuple(args))
        raise ImageMapError(
            f"image map entry {image!r} must be a non-empty list of strings or an object with "
            '"command" and "args" lists'
        )
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise ImageMapError(f"image map entry {image!r} is not a command line: {error}") from None
    if not words:
        raise ImageMapError(f"image map entry {image!r} is empty")
    return ImageEntrypoint(tuple(words))


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


def lookup(image_map: Mapping[str, str], image: str) -> ImageEntrypoint | None:
    """The entrypoint for ``image``, or None when the map has no entry for it."""
    for candidate in reference_candidates(image):
        if candidate in image_map:
            return parse_entry(candidate, image_map[candidate])
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
