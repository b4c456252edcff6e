"""A test app that tells whether it ever had two requests at once.

Run by the local node for the image ``knserve.dev/e2e/overlap`` (the autoscaling e2e
tests map it in the image map). Every answer is JSON::

  {"pid": 123, "in_flight": 1, "most_in_flight": 1}

``in_flight`` counts the requests this process was handling when the request began
(itself included); ``most_in_flight`` is the highest such count this process has seen.
``?sleep=MS`` holds the request that many milliseconds before answering.
Side effects: serves HTTP on ``$PORT`` until SIGTERM.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.parse

from samples.httpserver import SampleHandler, serve

IMAGE = "knserve.dev/e2e/overlap"

_lock = threading.Lock()
_in_flight = 0
_most_in_flight = 0


class OverlapHandler(SampleHandler):
    def do_GET(self) -> None:
        global _in_flight, _most_in_flight
        self.read_body()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        sleep_ms = float((query.get("sleep") or ["0"])[-1] or 0)
        with _lock:
            _in_flight += 1
            seen = _in_flight
            _most_in_flight = max(_most_in_flight, seen)
        try:
            if sleep_ms > 0:
                time.sleep(sleep_ms / 1000)
        finally:
            with _lock:
                _in_flight -= 1
                most = _most_in_flight
        self.send_json({"pid": os.getpid(), "in_flight": seen, "most_in_flight": most})


def main() -> int:
    return serve(OverlapHandler, name="overlap")


if __name__ == "__main__":
    sys.exit(main())
