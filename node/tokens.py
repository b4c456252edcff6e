"""Service-account credentials for a pod: a bound token, kept fresh, and a kubeconfig around it.

A pod that uses a service account (``automountServiceAccountToken`` not false) gets a
directory with the standard files (``token``, ``ca.crt``, ``namespace``) plus ``kubeconfig``,
a kubeconfig for that account that reads the token from the ``token`` file. Its containers
find it through ``KUBECONFIG``. The token comes from the TokenRequest API, bound to the pod
(so it dies with the pod) for the API server's default audience, and is rewritten once 80%
of its lifetime has passed (at most hourly), the way the kubelet refreshes projected tokens.

Side effects: TokenRequest calls, files in the pod's directory.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
from pathlib import Path
from typing import Any

from kube.errors import ApiError
from node.api import NodeApi, ServerInfo

log = logging.getLogger(__name__)

TOKEN_SECONDS = 3607  # what the kubelet asks for; the API server may extend it
REFRESH_AT = 0.8
MAX_REFRESH_INTERVAL = 3600.0


def uses_service_account(pod: dict[str, Any], account_automount: bool | None = None) -> bool:
    spec = pod.get("spec") or {}
    setting = spec.get("automountServiceAccountToken")
    if setting is None:
        setting = account_automount
    return setting is not False


def service_account_name(pod: dict[str, Any]) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def kubeconfig_for(*, server: ServerInfo, namespace: str, account: str, token_file: Path, ca_file: Path | None) -> str:
    cluster: dict[str, Any] = {"server": server.url}
    if server.tls_server_name:
        cluster["tls-server-name"] = server.tls_server_name
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    else:
        cluster["insecure-skip-tls-verify"] = True
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "knserve", "cluster": cluster}],
        "users": [{"name": f"system:serviceaccount:{namespace}:{account}", "user": {"tokenFile": str(token_file)}}],
        "contexts": [
            {
                "name": "knserve",
                "context": {"cluster": "knserve", "user": f"system:serviceaccount:{namespace}:{account}", "namespace": namespace},
            }
        ],
        "current-context": "knserve",
    }
    return json.dumps(document, indent=2)  # JSON is YAML: every kubeconfig reader takes it


def _write(path: Path, content: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(content)
    os.chmod(temporary, mode)
    if owner is not None:
        os.chown(temporary, *owner)
    os.replace(temporary, path)


def refresh_delay(expiration: str, now: datetime.datetime) -> float:
    """Seconds until a token expiring at ``expiration`` should be replaced."""
    try:
        expires = datetime.datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return 10.0  # unknown expiry (the last refresh failed): try again soon
    lifetime = (expires - now).total_seconds()
    return max(5.0, min(lifetime * REFRESH_AT, MAX_REFRESH_INTERVAL))


class PodCredentials:
    """One pod's service-account directory and its refresh loop."""

    def __init__(self, api: NodeApi, server: ServerInfo, pod: dict[str, Any], directory: Path) -> None:
        self.api = api
        self.server = server
        metadata = pod["metadata"]
        self.namespace = str(metadata["namespace"])
        self.pod_name = str(metadata["name"])
        self.pod_uid = str(metadata["uid"])
        self.account = service_account_name(pod)
        self.directory = directory
        self.owner: tuple[int, int] | None = None  # uid and gid the token is for, when not root
        self._expiration = ""

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    async def write(self) -> None:
        """Fetch a token and write every file; raises ``ApiError`` when the token is refused."""
        token, self._expiration = await self.api.request_token(
            self.namespace, self.account, pod_name=self.pod_name, pod_uid=self.pod_uid, expiration_seconds=TOKEN_SECONDS
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        _write(self.directory / "token", token.encode(), 0o600, self.owner)
        _write(self.directory / "namespace", self.namespace.encode())
        ca_file: Path | None = None
        if self.server.ca_pem:
            ca_file = self.directory / "ca.crt"
            _write(ca_file, self.server.ca_pem)
        config = kubeconfig_for(
            server=self.server, namespace=self.namespace, account=self.account,
            token_file=self.directory / "token", ca_file=ca_file,
        )
        _write(self.kubeconfig, config.encode(), 0o600, self.owner)

    async def keep_fresh(self) -> None:
        """Rewrite the token before it expires, until cancelled."""
        while True:
            await asyncio.sleep(refresh_delay(self._expiration, datetime.datetime.now(datetime.timezone.utc)))
            try:
                await self.write()
            except (ApiError, OSError) as error:
                log.warning("refreshing the token of pod %s/%s failed: %s", self.namespace, self.pod_name, error)
                self._expiration = ""
