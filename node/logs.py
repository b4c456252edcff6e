"""The kubelet log endpoint, so ``kubectl logs`` (``-f``, ``--previous``, ``--tail``) works.

The API server proxies ``kubectl logs`` to ``https://<node InternalIP>:<port>/containerLogs/
<namespace>/<pod>/<container>`` with the query parameters ``follow``, ``previous``,
``tailLines`` and ``limitBytes``; this module serves that path from the per-container log
files (stdout and stderr of the process, one file per run). A follow ends when the process
that writes the file is gone. ``serving_certificate`` makes a self-signed certificate when
none is given: the API server does not verify the kubelet unless it is started with
``--kubelet-certificate-authority``.

Side effects: a listening HTTPS socket; reads log files; may write a key and certificate.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from node.pod import PodWorker

log = logging.getLogger(__name__)

FOLLOW_POLL_SECONDS = 0.2
_CHUNK = 64 * 1024


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def tail_offset(path: Path, lines: int) -> int:
    """The byte offset where the last ``lines`` lines of ``path`` begin."""
    size = path.stat().st_size
    if lines <= 0:
        return size
    with open(path, "rb") as handle:
        position = size
        newlines = 0
        # A final newline ends the last line; it does not start another one.
        handle.seek(max(size - 1, 0))
        if size and handle.read(1) == b"\n":
            position -= 1
        while position > 0:
            start = max(0, position - _CHUNK)
            handle.seek(start)
            block = handle.read(position - start)
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index == -1:
                    break
                newlines += 1
                if newlines == lines:
                    return start + index + 1
            position = start
    return 0


def serving_certificate(directory: Path, node_name: str, address: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``address`` in ``directory``, made once and reused."""
    cert_path = directory / "kubelet.crt"
    key_path = directory / "kubelet.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@knserve-node")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(node_name), x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


class LogServer:
    """``/containerLogs/...`` and ``/healthz`` over HTTPS."""

    def __init__(
        self,
        find_pod: Callable[[str, str], PodWorker | None],
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.find_pod = find_pod
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_get("/healthz", self.healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        return _text(200, "ok")

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        pod_name = request.match_info["pod"]
        container = request.match_info["container"]
        worker = self.find_pod(namespace, pod_name)
        if worker is None:
            return _text(404, f'pod "{pod_name}" not found in namespace "{namespace}" on this node')
        supervisor = worker.supervisor(container)
        if supervisor is None:
            return _text(404, f'container "{container}" not found in pod "{pod_name}"')
        query = request.query
        previous = _flag(query.get("previous"))
        follow = _flag(query.get("follow")) and not previous
        path = supervisor.log_file(previous=previous)
        if path is None:
            if previous:
                return _text(400, f'previous terminated container "{container}" in pod "{pod_name}" not found')
            reason = getattr(supervisor.state, "reason", "ContainerCreating")
            return _text(400, f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}')
        try:
            tail = int(query["tailLines"]) if "tailLines" in query else -1
            limit = int(query["limitBytes"]) if "limitBytes" in query else -1
        except ValueError:
            return _text(400, "tailLines and limitBytes must be integers")
        offset = tail_offset(path, tail) if tail >= 0 else 0
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = 0
        restart_count = supervisor.restart_count
        with open(path, "rb") as handle:
            handle.seek(offset)
            while True:
                chunk = handle.read(_CHUNK)
                if chunk:
                    if limit >= 0:
                        chunk = chunk[: max(limit - sent, 0)]
                    if chunk:
                        await response.write(chunk)
                        sent += len(chunk)
                    if limit >= 0 and sent >= limit:
                        break
                    continue
                if not follow:
                    break
                if not (supervisor.running and supervisor.restart_count == restart_count):
                    follow = False  # one more read picks up what it wrote before exiting
                    continue
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        await response.write_eof()
        return response
