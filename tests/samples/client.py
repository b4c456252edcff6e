"""A plain HTTP client for the sample tests: one request, the whole answer."""

from __future__ import annotations

import dataclasses
import http.client
import json
import urllib.parse
from typing import Any


@dataclasses.dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
    timeout: float = 30.0,
) -> Answer:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()
