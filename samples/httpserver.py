"""The small HTTP server every sample runs on; it lives in ``functions.httpserver``.

The function runtime serves handlers on the same server, so it moved there; the samples keep
importing it under this name. See ``functions.httpserver`` for what it does and why.
"""

from __future__ import annotations

from functions.httpserver import (
    DEFAULT_PORT,
    LISTEN_BACKLOG,
    MAX_HEADERS,
    MAX_LINE,
    REASONS,
    Headers,
    SampleHandler,
    SampleServer,
    listen_port,
    log,
    serve,
)

__all__ = [
    "DEFAULT_PORT", "LISTEN_BACKLOG", "MAX_HEADERS", "MAX_LINE", "REASONS", "Headers", "SampleHandler",
    "SampleServer", "listen_port", "log", "serve",
]
