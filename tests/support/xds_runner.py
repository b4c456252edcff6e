"""A whole ingress on one machine without the rest of knserve: an xDS server plus a real Envoy.

:class:`LocalIngress` starts an :class:`XdsController` and an Envoy bootstrapped against it,
every port free and on 127.0.0.1 (over mutual TLS when given ``certificates``), and can
restart the control plane on the same port (a new
controller, fresh version counter and empty cache) while Envoy keeps running. Tests and
``bench/xds_bench.py`` drive it with ``ingress.controller.update(model)``.

Side effects: listens on free ports, starts and stops an Envoy process in ``work_dir``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import TracebackType

from serving.xds.bootstrap import BootstrapSettings, XdsClientTls, make_bootstrap
from serving.xds.controller import INGRESS_NODE_CLUSTER, XdsController
from serving.xds.tls import SERVER_NAME, XdsCertificates
from serving.xds.translate import IngressSettings
from tests.support.envoy_process import EnvoyProcess
from tests.support.ports import free_port


class LocalIngress:
    """Control plane and data plane for tests: ``async with LocalIngress(tmp_path) as ingress``."""

    def __init__(
        self,
        work_dir: Path,
        *,
        settings: IngressSettings | None = None,
        node_id: str | None = None,
        log_level: str = "info",
        concurrency: int | None = 2,
        keepalive_interval_seconds: int = 30,
        certificates: XdsCertificates | None = None,
    ) -> None:
        self.settings = settings or IngressSettings(external_port=free_port(), internal_port=free_port())
        self.xds_port = free_port()
        self.certificates = certificates
        self.controller = XdsController(settings=self.settings, certificates=certificates)
        tls = None
        if certificates is not None:
            cert, key, ca = certificates.write_client(work_dir / "xds-tls")
            tls = XdsClientTls(cert_file=str(cert), key_file=str(key), ca_file=str(ca), server_name=SERVER_NAME)
        bootstrap = make_bootstrap(
            BootstrapSettings(
                node_id=node_id or f"envoy-{uuid.uuid4().hex[:8]}",
                node_cluster=INGRESS_NODE_CLUSTER,
                xds_host="127.0.0.1",
                xds_port=self.xds_port,
                admin_port=0,
                keepalive_interval_seconds=keepalive_interval_seconds,
                tls=tls,
            )
        )
        self.envoy = EnvoyProcess(bootstrap, work_dir=work_dir, log_level=log_level, concurrency=concurrency)

    @property
    def external_url(self) -> str:
        return f"http://{self.settings.external_host}:{self.settings.external_port}"

    @property
    def internal_url(self) -> str:
        return f"http://{self.settings.internal_host}:{self.settings.internal_port}"

    async def start(self) -> None:
        await self.controller.start(f"127.0.0.1:{self.xds_port}")
        await self.envoy.start()

    async def stop(self) -> None:
        await self.envoy.stop()
        await self.controller.stop()

    async def stop_control_plane(self) -> None:
        """Stop the xDS server; Envoy keeps serving its last config and retries the stream."""
        await self.controller.stop(grace=None)

    async def restart_control_plane(self) -> XdsController:
        """A new controller on the same port, remembering nothing (version counter from 1)."""
        await self.controller.stop(grace=None)
        self.controller = XdsController(settings=self.settings, certificates=self.certificates)
        await self.controller.start(f"127.0.0.1:{self.xds_port}")
        return self.controller

    async def __aenter__(self) -> LocalIngress:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()
