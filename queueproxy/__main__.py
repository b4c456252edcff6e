"""``knserve queue-proxy``: read the environment, run the sidecar until drained.

Thin: settings from the environment, uvloop when available, signals wired to the
drain, one ``QueueProxy.run()``. Exit status 0 after a clean drain, 2 for a bad
environment (the message says which variable and why).

Start-up is on every new pod's path, so this module imports nothing heavy itself:
``main`` turns the cyclic garbage collector off, then imports asyncio, uvloop and the
sidecar (tens of thousands of objects, none of them garbage: collecting while they are
made is wasted work), and once the sidecar is built freezes what exists and turns the
collector back on. Importing this module (a zygote preloading it) has no side effect.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queueproxy.settings import Settings

USAGE = """usage: knserve queue-proxy

The per-pod sidecar. Configured from the environment the controller sets (USER_PORT,
CONTAINER_CONCURRENCY, REVISION_TIMEOUT_SECONDS, SERVING_READINESS_PROBE, ...; see
queueproxy/settings.py). Drains and exits 0 on SIGTERM."""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args:
        print(f"knserve queue-proxy: unexpected arguments {' '.join(args)!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _start(collecting)
    finally:
        if collecting:
            gc.enable()


def _start(collecting: bool) -> int:
    import logging

    from queueproxy.settings import Settings, SettingsError

    logging.basicConfig(
        level=os.environ.get("QUEUE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"knserve queue-proxy: {error}", file=sys.stderr)
        return 2
    return _run(settings, collecting)


def _run(settings: Settings, collecting: bool) -> int:
    import asyncio
    import signal

    from queueproxy.server import QueueProxy

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay runnable without it
        runner = asyncio.run
    else:
        runner = uvloop.run

    async def serve() -> int:
        queue_proxy = QueueProxy(settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, queue_proxy.terminate)
        if collecting:
            gc.freeze()  # what start-up made lives as long as the process: never scan it again
            gc.enable()
        return await queue_proxy.run()

    try:
        return int(runner(serve()))
    except OSError as error:
        print(f"knserve queue-proxy: cannot listen: {error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
