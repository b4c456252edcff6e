"""Errors the API server answers with, as exceptions the reconcilers can catch by meaning.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP code, ``reason`` its Status reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message or reason or f"HTTP {status}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409 on update: the resourceVersion was stale. Re-read and retry."""


class AlreadyExists(ApiError):
    """409 on create: an object of that name exists."""


class Gone(ApiError):
    """410: a watch or list asked for a resourceVersion that has been compacted away."""


class Invalid(ApiError):
    """422: the object failed validation."""


def error_from_status(status: int, body: dict[str, Any] | None) -> ApiError:
    """Turn an HTTP status and the server's Status body into the matching exception."""
    body = body or {}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or "")
    code = int(body.get("code") or status)
    if code == 404:
        return NotFound(code, reason or "NotFound", message)
    if code == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(code, reason, message)
        return Conflict(code, reason or "Conflict", message)
    if code == 410:
        return Gone(code, reason or "Expired", message)
    if code == 422:
        return Invalid(code, reason or "Invalid", message)
    return ApiError(code, reason, message)
