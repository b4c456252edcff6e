"""The faulty sample: ``Hello $TARGET!`` with a set share of failures and a set delay, for
trying canary analysis (a Revision that fails or is slow next to one that is not).

``python3 -m samples.faulty`` reads two variables (each optional, 0 by default):

  ERROR_PERCENT=N   N of every 100 requests answer ``500`` (spread evenly: every
                    100/N-th, counted per process), the rest ``Hello $TARGET!``
  DELAY_MS=N        every answer waits N milliseconds first

Requests are served concurrently (a thread each). Side effects: serves HTTP until SIGTERM.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

from samples.helloworld import greeting
from samples.httpserver import SampleHandler, serve


def fails(count: int, error_percent: int) -> bool:
    """Whether the ``count``-th request (0-based) is one of the ``error_percent`` in 100 that fail."""
    if error_percent <= 0:
        return False
    return (count * error_percent) // 100 != ((count + 1) * error_percent) // 100


class FaultyHandler(SampleHandler):
    counter = itertools.count()
    lock = threading.Lock()

    def do_GET(self) -> None:
        self.read_body()
        delay = int(os.environ.get("DELAY_MS") or 0)
        if delay > 0:
            time.sleep(delay / 1000.0)
        with self.lock:
            count = next(self.counter)
        if fails(count, int(os.environ.get("ERROR_PERCENT") or 0)):
            self.send_text("failing on purpose (ERROR_PERCENT)\n", status=500)
            return
        self.send_text(greeting(os.environ.get("TARGET")))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET


def main() -> int:
    return serve(FaultyHandler, name="faulty")


if __name__ == "__main__":
    raise SystemExit(main())
