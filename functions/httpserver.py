"""The small HTTP server the samples and the function runtime run on: threads, keep-alive, ``$PORT``, SIGTERM.

``serve(handler, name=...)`` binds ``0.0.0.0:$PORT`` (default 8080), logs one line when it
listens and one when it stops, and serves until SIGTERM or SIGINT: then it closes the
listener, finishes every request in flight (their answers say ``Connection: close``) and
returns 0. Each connection gets a thread, so slow requests never block others.

Why the wildcard address: a local knserve node gives each pod's ``PORT`` a node-unique
number and reaches the app at ``127.0.0.1:$PORT`` (the queue-proxy) or at the pod IP, so
binding every address is what the node expects, as a container's app does in a cluster.

Why not ``http.server``: importing it pulls in ``http.client``, ``email`` and ``ssl``, which
made up half of a sample's start-up (about 40 ms of CPU on a small machine, paid again by
every pod a woken revision starts). ``SampleHandler`` keeps ``BaseHTTPRequestHandler``'s
interface for what the samples use (``command``, ``path``, ``headers``, ``rfile``,
``wfile``, ``send_response``/``send_header``/``end_headers``, ``do_<METHOD>`` methods) and
speaks the HTTP/1.1 a sample needs: keep-alive (``Connection`` honoured either way),
``Content-Length`` bodies, ``Expect: 100-continue``, and 400, 414, 431, 501 and 505 answers
for requests it cannot take.

Side effects: opens a listening socket, installs SIGTERM/SIGINT handlers, writes to stderr.
"""

from __future__ import annotations

import os
import signal
import socketserver
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from types import FrameType

TYPE_CHECKING = False  # not typing's: importing typing is a tenth of this module's start-up
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PORT = 8080
LISTEN_BACKLOG = 1024
MAX_LINE = 65536
MAX_HEADERS = 100
REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 413: "Content Too Large",
    414: "URI Too Long", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


class Headers:
    """A request's header fields in arrival order; names match without regard to case."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for field, value in self._fields:
            if field.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for field, value in self._fields if field.lower() == wanted]

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [field for field, _ in self._fields]

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._fields)


class SampleHandler(socketserver.StreamRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, no access log, helpers to answer."""

    protocol_version = "HTTP/1.1"
    server_version = "knserve-sample"
    # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (about 40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    command = ""
    path = ""
    request_version = ""
    headers = Headers([])
    close_connection = True
    _head: list[bytes] = []

    # --- answering ------------------------------------------------------------------------
    def send_text(self, text: str, *, status: int = 200) -> None:
        self.send_body(text.encode(), content_type="text/plain; charset=utf-8", status=status)

    def send_json(self, document: Any, *, status: int = 200) -> None:
        import json  # only the samples that answer JSON pay for it

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

    def send_response(self, code: int, message: str | None = None) -> None:
        reason = REASONS.get(code, "") if message is None else message
        self._head = [f"{self.protocol_version} {code} {reason}\r\n".encode("latin-1", "replace")]
        self.send_header("Server", self.server_version)
        self.send_header("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
        if isinstance(self.server, SampleServer) and self.server.stopping:
            self.send_header("Connection", "close")  # this answer is the connection's last

    def send_header(self, keyword: str, value: str) -> None:
        self._head.append(f"{keyword}: {value}\r\n".encode("latin-1", "replace"))
        if keyword.lower() == "connection":
            if value.lower() == "close":
                self.close_connection = True
            elif value.lower() == "keep-alive":
                self.close_connection = False

    def end_headers(self) -> None:
        self._head.append(b"\r\n")
        self.wfile.write(b"".join(self._head))
        self._head = []

    def send_error(self, code: int, message: str | None = None) -> None:
        """A plain-text error answer; the connection closes after it."""
        self.close_connection = True
        body = f"{code} {message or REASONS.get(code, '')}\n".encode("latin-1", "replace")
        self.send_response(code)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- reading requests ---------------------------------------------------------------------
    def handle(self) -> None:
        self._head = []
        self.close_connection = True
        try:
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()
        except (ConnectionError, TimeoutError):
            pass

    def handle_one_request(self) -> None:
        self.command = ""
        line = self.rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            self.send_error(414)
            return
        if not line:
            self.close_connection = True
            return
        server = self.server if isinstance(self.server, SampleServer) else None
        if server is not None:
            server.request_started()
        try:
            if not self._parse_request(line):
                return
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        finally:
            if server is not None:
                server.request_finished()

    def _parse_request(self, line: bytes) -> bool:
        """Read the request line and headers; False (after answering an error) when unusable."""
        words = line.decode("latin-1").rstrip("\r\n").split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.close_connection = True
            if words:
                self.send_error(400, f"Bad request line ({line[:80]!r})")
            return False
        self.command, self.path, self.request_version = words
        try:
            major, minor = (int(part) for part in words[2][5:].split(".", 1))
        except ValueError:
            self.send_error(400, f"Bad request version ({words[2]!r})")
            return False
        if major != 1:
            self.send_error(505, f"Invalid HTTP version ({words[2]})")
            return False
        fields: list[tuple[str, str]] = []
        while True:
            raw = self.rfile.readline(MAX_LINE + 1)
            if len(raw) > MAX_LINE:
                self.send_error(431, "Line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(fields) >= MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
            text = raw.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and fields:  # an obsolete folded continuation line
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if not colon or not name or name != name.strip():
                self.send_error(400, f"Bad header line ({raw[:80]!r})")
                return False
            fields.append((name, value.strip()))
        self.headers = Headers(fields)
        connection = (self.headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (minor == 0 and connection != "keep-alive")
        if minor >= 1 and (self.headers.get("Expect") or "").lower() == "100-continue":
            self.wfile.write(f"{self.protocol_version} 100 Continue\r\n\r\n".encode())
        return True


class SampleServer(socketserver.ThreadingTCPServer):
    """Counts the requests in flight, so a stopping server can finish them before it exits."""

    allow_reuse_address = True
    daemon_threads = True  # idle keep-alive connections must not keep the process alive
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[SampleHandler]) -> None:
        super().__init__(address, handler)
        self.stopping = False
        self.in_flight = 0
        self._changed = threading.Condition()

    def request_started(self) -> None:
        with self._changed:
            self.in_flight += 1

    def request_finished(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def finish_in_flight(self) -> int:
        """Wait until no request is in flight; how many there were when the wait began."""
        with self._changed:
            waited_for = self.in_flight
            self._changed.wait_for(lambda: self.in_flight == 0)
        return waited_for


def listen_port(environ: Mapping[str, str] = os.environ) -> int:
    value = environ.get("PORT", "")
    if not value:
        return DEFAULT_PORT
    if not value.isdigit():
        raise SystemExit(f"PORT must be a port number, not {value!r}.")
    return int(value)


def log(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr, flush=True)


def serve(handler: type[SampleHandler], *, name: str) -> int:
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
        server.stopping = True
        # shutdown() waits for serve_forever to return, so it must not run on its thread.
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(name, f"listening on port {server.server_address[1]}")
    with server:
        server.serve_forever()
    # The listener is closed: no new connection. Requests already read are answered.
    finished = server.finish_in_flight()
    if finished:
        log(name, f"finished {finished} requests in flight")
    return 0
