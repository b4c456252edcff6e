"""A tiny ``hey``-like load generator, standard library only.

    python3 examples/load.py -z 30s -c 50 -H 'Host: autoscale-go.default.example.com' \
        'http://127.0.0.1:8080/?sleep=100&prime=10000&bloat=5'

Keeps ``-c`` requests in flight (one keep-alive connection each) for ``-z`` and then prints
the request count, requests per second, latency percentiles and the status codes seen.
Side effects: sends HTTP requests; prints to stdout.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import threading
import time
import urllib.parse


def duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def worker(
    url: urllib.parse.SplitResult,
    headers: dict[str, str],
    *,
    until: float,
    latencies: list[float],
    statuses: collections.Counter[str],
    lock: threading.Lock,
) -> None:
    target = url.path or "/"
    if url.query:
        target += "?" + url.query
    connection: http.client.HTTPConnection | None = None
    while time.monotonic() < until:
        if connection is None:
            connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=60)
        started = time.monotonic()
        try:
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            response.read()
            outcome = str(response.status)
        except (OSError, http.client.HTTPException) as error:
            outcome = type(error).__name__
            connection.close()
            connection = None
        elapsed = time.monotonic() - started
        with lock:
            latencies.append(elapsed)
            statuses[outcome] += 1
    if connection is not None:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("-z", default="10s", help="how long to send requests (e.g. 30s, 2m)")
    parser.add_argument("-c", type=int, default=50, help="requests in flight at once")
    parser.add_argument("-H", action="append", default=[], help="a header, 'Name: value' (repeatable)")
    args = parser.parse_args()
    headers: dict[str, str] = {}
    for header in args.H:
        name, colon, value = header.partition(":")
        if not colon:
            parser.error(f"the header {header!r} needs a colon, like 'Host: hello.default.example.com'")
        headers[name.strip()] = value.strip()
    url = urllib.parse.urlsplit(args.url)
    seconds = duration(args.z)
    latencies: list[float] = []
    statuses: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=worker,
            args=(url, headers),
            kwargs={"until": started + seconds, "latencies": latencies, "statuses": statuses, "lock": lock},
            daemon=True,
        )
        for _ in range(args.c)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.monotonic() - started
    latencies.sort()
    print(f"Requests: {len(latencies)} in {total:.1f} s ({len(latencies) / total:.1f}/s)")
    if latencies:
        for share in (50, 90, 99):
            index = min(len(latencies) - 1, len(latencies) * share // 100)
            print(f"  {share}% in {latencies[index] * 1000:.1f} ms")
    print("Status codes: " + ", ".join(f"[{code}] {count}" for code, count in sorted(statuses.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
