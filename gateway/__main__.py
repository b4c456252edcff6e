"""``knserve gateway``: OpenFaaS's gateway API on ``--port`` (8080; 31112 on a local cluster).

Settings: ``--ingress`` where Knative Services answer (default ``$KNSERVE_INGRESS``, else the
ingress Service in ``knative-serving``), ``--namespace`` for functions named without one,
``--kubeconfig`` (default ``$KUBECONFIG``, else the pod's service account), ``--no-auth`` to
serve ``/system`` without basic auth (tests only).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from aiohttp import web

from gateway.app import Gateway, GatewaySettings, make_app
from gateway.auth import ensure_credentials
from kube.client import connect
from kube.errors import ApiError

DEFAULT_INGRESS = "http://knserve-ingress.knative-serving.svc.cluster.local:80"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve gateway", description="OpenFaaS's gateway API over Knative.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080))
    parser.add_argument("--address", default="0.0.0.0")
    parser.add_argument("--ingress", default=os.environ.get("KNSERVE_INGRESS", DEFAULT_INGRESS))
    parser.add_argument("--namespace", default=os.environ.get("FUNCTION_NAMESPACE", "default"))
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--log-format", default="text")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    client = await connect(args.kubeconfig, field_manager="knserve-gateway")
    try:
        credentials = None if args.no_auth else await ensure_credentials(client)
        settings = GatewaySettings(ingress=args.ingress, default_namespace=args.namespace, credentials=credentials,
                                   kubeconfig=args.kubeconfig)
        runner = web.AppRunner(make_app(Gateway(client, settings)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.address, args.port).start()
        logging.getLogger("knserve.gateway").info("gateway listening on %s:%d (ingress %s)", args.address,
                                                  args.port, args.ingress)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.cleanup()
        return 0
    except ApiError as error:
        print(f"knserve gateway: {error}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
