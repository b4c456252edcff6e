"""The small HTTP server every sample runs on: threads, keep-alive, ``$PORT``, SIGTERM.

``serve(handler, name=...)`` binds ``0.0.0.0:$PORT`` (default 8080), logs one line when it
listens and one when it stops, and serves until SIGTERM or SIGINT, then closes the listener
and returns 0. Each connection gets a thread, so slow requests never block others.

Why the wildcard address: a local knserve node gives each pod's ``PORT`` a node-unique
number and reaches the app at ``127.0.0.1:$PORT`` (the queue-proxy) or at the pod IP, so
binding every address is what the node expects, as a container's app does in a cluster.

Side effects: opens a listening socket, installs SIGTERM/SIGINT handlers, writes to stderr.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from types import FrameType
from typing import Any

DEFAULT_PORT = 8080
LISTEN_BACKLOG = 1024


class SampleHandler(http.server.BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, quiet access log, helpers to answer."""

    protocol_version = "HTTP/1.1"
    server_version = "knserve-sample"
    sys_version = ""
    # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (about 40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """No access log: one line per request would dominate the cost of a tiny answer."""

    def send_text(self, text: str, *, status: int = 200) -> None:
        self.send_body(text.encode(), content_type="text/plain; charset=utf-8", status=status)

    def send_json(self, document: Any, *, status: int = 200) -> None:
        body = json.dumps(document, indent=None, sort_keys=True).encode() + b"\n"
        self.send_body(body, content_type="application/json", status=status)

    def send_body(self, body: bytes, *, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


class SampleServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG


def listen_port(environ: Mapping[str, str] = os.environ) -> int:
    value = environ.get("PORT", "")
    if not value:
        return DEFAULT_PORT
    if not value.isdigit():
        raise SystemExit(f"PORT must be a port number, not {value!r}.")
    return int(value)


def log(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr, flush=True)


def serve(handler: type[http.server.BaseHTTPRequestHandler], *, name: str) -> int:
    """Serve ``handler`` on ``0.0.0.0:$PORT`` until SIGTERM or SIGINT; the exit code."""
    port = listen_port()
    log(name, "starting server...")
    try:
        server = SampleServer(("0.0.0.0", port), handler)
    except OSError as error:
        log(name, f"cannot listen on port {port}: {error.strerror}")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        log(name, f"received {signal.Signals(signum).name}, shutting down")
        # shutdown() waits for serve_forever to return, so it must not run on its thread.
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(name, f"listening on port {server.server_address[1]}")
    with server:
        server.serve_forever()
    return 0
