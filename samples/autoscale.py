"""The autoscaling sample: the local stand-in for ``ghcr.io/knative/autoscale-go``.

``python3 -m samples.autoscale`` spends time, CPU and memory on request, so that load
makes the autoscaler add pods. Query parameters (each optional, 0 means skip it):

  sleep=MS   sleep MS milliseconds          -> ``Slept for 100.13 milliseconds.``
  prime=N    find the largest prime below N -> ``The largest prime less than 10000 is 9973.``
  bloat=MB   allocate and touch MB MiB      -> ``Allocated 5 Mb of memory.``

The three run side by side and each writes its line when it finishes, as the original does;
a value that is not an integer gets a 400. Requests are served concurrently (a thread each).
Side effects: serves HTTP until SIGTERM; sleeps, computes and allocates on request.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping

from samples.httpserver import SampleHandler, serve

PAGE_SIZE = 4096
MEBIBYTE = 1024 * 1024


def largest_prime_below(limit: int) -> int | None:
    """The largest prime strictly below ``limit`` (sieve of Eratosthenes), or None."""
    if limit <= 2:
        return None
    is_prime = bytearray([1]) * limit
    is_prime[0] = is_prime[1] = 0
    factor = 2
    while factor * factor < limit:
        if is_prime[factor]:
            is_prime[factor * factor :: factor] = bytes(len(range(factor * factor, limit, factor)))
        factor += 1
    return is_prime.rindex(1)


def prime(limit: int) -> str:
    found = largest_prime_below(limit)
    if found is None:
        return f"There are no primes smaller than {limit}.\n"
    return f"The largest prime less than {limit} is {found}.\n"


def bloat(megabytes: int) -> str:
    """Allocate ``megabytes`` MiB and touch every page, so the memory is really in use."""
    block = bytearray(megabytes * MEBIBYTE)
    block[::PAGE_SIZE] = b"\x01" * len(range(0, len(block), PAGE_SIZE))
    del block
    return f"Allocated {megabytes} Mb of memory.\n"


def sleep(milliseconds: int) -> str:
    started = time.perf_counter()
    time.sleep(milliseconds / 1000)
    slept = (time.perf_counter() - started) * 1000
    return f"Slept for {slept:.2f} milliseconds.\n"


class BadParameter(ValueError):
    pass


def parse_work(query: Mapping[str, list[str]]) -> list[tuple[Callable[[int], str], int]]:
    """The work a query asks for, as (function, amount) pairs; raises BadParameter."""
    work: list[tuple[Callable[[int], str], int]] = []
    for name, function in (("sleep", sleep), ("prime", prime), ("bloat", bloat)):
        values = query.get(name)
        if not values or values[0] == "":
            continue
        try:
            amount = int(values[0])
        except ValueError:
            raise BadParameter(f"The {name} parameter must be an integer, not {values[0]!r}.\n") from None
        if amount < 0:
            raise BadParameter(f"The {name} parameter must not be negative, got {amount}.\n")
        if amount:
            work.append((function, amount))
    return work


def run_side_by_side(work: list[tuple[Callable[[int], str], int]]) -> str:
    """Run every piece of work on its own thread; their lines in the order they finish."""
    if len(work) == 1:
        function, amount = work[0]
        return function(amount)
    lines: list[str] = []
    lock = threading.Lock()

    def run(function: Callable[[int], str], amount: int) -> None:
        line = function(amount)
        with lock:
            lines.append(line)

    threads = [threading.Thread(target=run, args=item) for item in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return "".join(lines)


class AutoscaleHandler(SampleHandler):
    def do_GET(self) -> None:
        self.read_body()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        try:
            work = parse_work(query)
        except BadParameter as error:
            self.send_text(str(error), status=400)
            return
        self.send_text(run_side_by_side(work))

    do_POST = do_HEAD = do_GET


def main() -> int:
    return serve(AutoscaleHandler, name="autoscale")


if __name__ == "__main__":
    raise SystemExit(main())
