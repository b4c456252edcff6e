"""The runtime-contract sample: shows a request and the environment an app is given.

``python3 -m samples.runtime`` answers every request with JSON::

  {"method": "GET", "path": "/x", "query": {"a": ["1"]}, "headers": {"Host": "..."},
   "body": "...", "env": {"K_SERVICE": ..., "K_CONFIGURATION": ..., "K_REVISION": ...,
   "PORT": ...}, "hostname": "...", "pid": 123}

Header names keep the case they arrived in; repeated headers are joined with ", ".
Query parameters shape the answer, for timeout and error tests:

  sleep=MS      wait MS milliseconds before answering
  stream=S      send the JSON's first line at once, then one line every ``interval`` ms
                (default 100) for S seconds, chunked
  status=CODE   answer with that status code

With the variable ``CRASH=1`` the process exits with status 1 at start, for crash tests.
Side effects: serves HTTP until SIGTERM; writes to stderr.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.parse
from typing import Any

from samples.httpserver import SampleHandler, log, serve

NAME = "runtime"
CONTRACT_VARIABLES = ("K_SERVICE", "K_CONFIGURATION", "K_REVISION", "PORT")
DEFAULT_STREAM_INTERVAL_MS = 100


def number(query: dict[str, list[str]], name: str, default: float = 0.0) -> float:
    values = query.get(name)
    if not values or not values[-1]:
        return default
    return float(values[-1])


class RuntimeHandler(SampleHandler):
    def describe(self, body: bytes, query: dict[str, list[str]]) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return {
            "method": self.command,
            "path": urllib.parse.urlsplit(self.path).path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "env": {name: os.environ.get(name) for name in CONTRACT_VARIABLES},
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        }

    def do_GET(self) -> None:
        body = self.read_body()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        try:
            sleep_ms = number(query, "sleep")
            stream_seconds = number(query, "stream")
            interval_ms = number(query, "interval", DEFAULT_STREAM_INTERVAL_MS)
            status = int(number(query, "status", 200))
        except ValueError:
            self.send_json({"error": "sleep, stream, interval and status must be numbers."}, status=400)
            return
        if sleep_ms > 0:
            time.sleep(sleep_ms / 1000)
        description = self.describe(body, query)
        if stream_seconds > 0 and self.command != "HEAD":
            self.stream(description, seconds=stream_seconds, interval=max(interval_ms, 1) / 1000, status=status)
        else:
            self.send_json(description, status=status)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def stream(self, description: dict[str, Any], *, seconds: float, interval: float, status: int) -> None:
        """One JSON line now, then ``{"tick": n}`` lines until ``seconds`` have passed."""
        self.send_response(status)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.write_chunk(json.dumps(description) + "\n")
        deadline = time.monotonic() + seconds
        tick = 0
        while time.monotonic() < deadline:
            time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
            tick += 1
            self.write_chunk(json.dumps({"tick": tick}) + "\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def write_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def main() -> int:
    if os.environ.get("CRASH", "") not in ("", "0"):
        log(NAME, "CRASH is set: exiting with status 1 as asked")
        return 1
    return serve(RuntimeHandler, name=NAME)


if __name__ == "__main__":
    sys.exit(main())
