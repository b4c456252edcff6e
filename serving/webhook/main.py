"""``knserve webhook``: the admission webhook as a process of its own (Knative's ``webhook``).

    knserve webhook [--kubeconfig FILE] [--address HOST:PORT] [--url URL]
                    [--drain-seconds S] [--log-format text|json] [--log-level LEVEL]

It reads the config-* ConfigMaps of knative-serving (the defaults it applies), serves
``serving.webhook.server``'s application over HTTPS with the certificate every replica shares
(the Secret ``webhook-certs``, made by the first replica), and registers the webhook
configurations pointing at ``--url`` when given, else at the ``webhook`` Service. ``/healthz``
answers 200 once the ConfigMaps are read. config/ runs two replicas with a
PodDisruptionBudget, so writes keep being admitted while one is replaced: on SIGTERM a
replica fails ``/healthz`` and keeps answering reviews for ``--drain-seconds`` (the API server
stops calling it once its endpoint is gone), then stops.

Side effects: network (API server, a listening socket), a temporary directory for the
certificate files, logs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from knserve.networking import SYSTEM_NAMESPACE
from kube.client import connect
from kube.errors import ApiError
from kube.informer import InformerFactory
from kube.resources import CONFIGMAPS
from serving.app import configure_logging
from serving.reconciler.config_store import ConfigStore
from serving.webhook.install import register_webhooks, shared_certificate
from serving.webhook.server import WebhookServer, server_ssl_context

log = logging.getLogger("knserve.webhook")


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve webhook",
                                     description="Knative Serving's defaulting and validation admission webhook.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else the in-cluster account)")
    parser.add_argument("--address", type=_host_port, default=("0.0.0.0", 8443),
                        help="the HTTPS address the API server calls (default 0.0.0.0:8443)")
    parser.add_argument("--url", help="URL the API server calls the webhook at (default: the webhook Service)")
    parser.add_argument("--drain-seconds", type=float, default=5.0,
                        help="on SIGTERM, seconds /healthz fails while reviews are still answered (default 5)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


class Webhook:
    """The webhook's collaborators: the ConfigMap cache, the HTTPS server, the registration."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self.ready = False

    async def run(self) -> None:
        """Serve until cancelled; then fail health checks, keep serving a while, stop."""
        client = await connect(self._args.kubeconfig)
        try:
            informers = InformerFactory(client, namespace=SYSTEM_NAMESPACE)
            store = ConfigStore()
            informers.informer(CONFIGMAPS, namespace=SYSTEM_NAMESPACE).add_handler(store.handle)
            certificate = await shared_certificate(client)
            with tempfile.TemporaryDirectory(prefix="knserve-webhook-") as scratch:
                pair = certificate.write(Path(scratch))
                host, port = self._args.address
                server = WebhookServer(store.snapshot, host=host, port=port, ready=lambda: self.ready, client=client,
                                       ssl_context=server_ssl_context(str(pair.cert), str(pair.key)))
                async with asyncio.TaskGroup() as group:
                    watching = group.create_task(informers.run(), name="informers")
                    await informers.wait_synced()
                    await server.start()
                    try:
                        await register_webhooks(client, ca_pem=certificate.ca, url=self._args.url)
                        self.ready = True
                        log.info("webhook serving on %s:%d", host, server.port)
                        await asyncio.Event().wait()
                    finally:
                        await self._drain(server)
                        watching.cancel()
        finally:
            await client.close()

    async def _drain(self, server: WebhookServer) -> None:
        self.ready = False
        seconds = self._args.drain_seconds
        if seconds > 0:
            log.info("stopping: health checks fail, reviews still answered for %.1fs", seconds)
            try:
                await asyncio.shield(asyncio.sleep(seconds))
            except asyncio.CancelledError:
                pass
        await server.stop()


async def _serve(args: argparse.Namespace) -> None:
    from knserve.cli import cancel_on_signals

    cancel_on_signals()
    await Webhook(args).run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_format, args.log_level)
    try:
        asyncio.run(_serve(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except ApiError as error:
        print(f"knserve webhook: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
