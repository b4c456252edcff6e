"""Calls through the ingress: the invoke panel, and a Service's dead-letter calls.

``parse_invoke`` reads the panel's form (method, path, ``Name: value`` header lines, body, the
asynchronous checkbox, which adds ``Prefer: respond-async``) into an ``InvokeRequest`` or a
sentence saying what is wrong; pure. ``Ingress`` sends requests to the ingress with the
Service's host in ``Host``, as curl would, and times them with the injected clock.

Side effects: HTTP requests to the ingress (``Ingress``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from knserve.clock import Clock

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
CALLS_PATH = "/.well-known/knserve/calls"
BODY_SHOWN = 64 * 1024


class InvokeError(ValueError):
    """The form cannot be sent; the message is a sentence for the user."""


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def parse_invoke(form: Mapping[str, str]) -> InvokeRequest:
    method = (form.get("method") or "GET").strip().upper()
    if method not in METHODS:
        raise InvokeError(f"The method {method!r} is not one of {', '.join(METHODS)}.")
    path = (form.get("path") or "/").strip() or "/"
    if not path.startswith("/") or any(character.isspace() for character in path):
        raise InvokeError(f"The path {path!r} must start with / and hold no spaces (e.g. /hello?name=x).")
    headers: list[tuple[str, str]] = []
    for number, line in enumerate((form.get("headers") or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not HEADER_NAME.match(name):
            raise InvokeError(f"Header line {number} ({line.strip()!r}) is not 'Name: value'.")
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvokeError(f"Header line {number} sets {name}, which the dashboard sets itself.")
        headers.append((name, value.strip()))
    if form.get("async") in ("on", "true", "1"):
        headers = [(name, value) for name, value in headers if name.lower() != "prefer"]
        headers.append(("Prefer", "respond-async"))
    return InvokeRequest(method=method, path=path, headers=tuple(headers), body=(form.get("body") or "").encode())


@dataclass(frozen=True, slots=True)
class InvokeResult:
    status: int | None  # None when no answer came
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: str
    truncated: bool
    milliseconds: float
    error: str | None = None


class Ingress:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, clock: Clock, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def invoke(self, host: str, request: InvokeRequest) -> InvokeResult:
        headers = {name: value for name, value in request.headers}
        headers["Host"] = host
        started = self.clock.monotonic()
        try:
            async with self.session.request(request.method, self.base_url + request.path, headers=headers,
                                            data=request.body or None, timeout=self.timeout,
                                            allow_redirects=False) as response:
                raw = await response.content.read(BODY_SHOWN + 1)
                elapsed = (self.clock.monotonic() - started) * 1000
                return InvokeResult(
                    status=response.status, reason=response.reason or "",
                    headers=tuple((name, value) for name, value in response.headers.items()),
                    body=raw[:BODY_SHOWN].decode(errors="replace"), truncated=len(raw) > BODY_SHOWN,
                    milliseconds=elapsed)
        except (TimeoutError, aiohttp.ClientError) as error:
            elapsed = (self.clock.monotonic() - started) * 1000
            return InvokeResult(status=None, reason="", headers=(), body="", truncated=False, milliseconds=elapsed,
                                error=f"No answer from the ingress at {self.base_url}: {error!r}")

    async def dead_calls(self, host: str) -> list[dict[str, Any]] | None:
        """The Service's dead-letter calls as the call queue lists them, None when it did not answer."""
        try:
            async with self.session.get(f"{self.base_url}{CALLS_PATH}?state=dead", headers={"Host": host},
                                        timeout=aiohttp.ClientTimeout(total=3)) as response:
                if response.status != 200:
                    return None
                body = json.loads(await response.read())
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        items = body.get("items") if isinstance(body, dict) else None
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else None
