"""``knserve queue-proxy``: read the environment, run the sidecar until drained.

Thin: settings from the environment, uvloop when available, signals wired to the
drain, one ``QueueProxy.run()``. Exit status 0 after a clean drain, 2 for a bad
environment (the message says which variable and why).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from queueproxy.server import QueueProxy
from queueproxy.settings import Settings, SettingsError

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
    logging.basicConfig(
        level=os.environ.get("QUEUE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"knserve queue-proxy: {error}", file=sys.stderr)
        return 2
    return _run(settings)


def _run(settings: Settings) -> int:
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
        return await queue_proxy.run()

    try:
        return int(runner(serve()))
    except OSError as error:
        print(f"knserve queue-proxy: cannot listen: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
