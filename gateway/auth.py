"""The gateway's basic-auth credentials: Secret ``knserve-gateway-auth`` in ``knative-serving``.

The keys are OpenFaaS's (``basic-auth-user``, ``basic-auth-password``). When the Secret does
not exist the gateway makes it with user ``admin`` and a generated password, so an install
never ships a known password; ``kubectl get secret knserve-gateway-auth -n knative-serving -o
jsonpath='{.data.basic-auth-password}' | base64 -d`` reads it, as with OpenFaaS.

Side effects: reads and may create that Secret.
"""

from __future__ import annotations

import base64
import secrets

from gateway.app import Credentials
from kube.client import KubeClient
from kube.errors import ApiError
from kube.resources import SECRETS

SECRET_NAME = "knserve-gateway-auth"
SECRET_NAMESPACE = "knative-serving"
USER_KEY = "basic-auth-user"
PASSWORD_KEY = "basic-auth-password"
DEFAULT_USER = "admin"


def _read(secret: dict[str, object]) -> Credentials | None:
    data = secret.get("data") or {}
    assert isinstance(data, dict)
    if USER_KEY not in data or PASSWORD_KEY not in data:
        return None
    return Credentials(base64.b64decode(data[USER_KEY]).decode(), base64.b64decode(data[PASSWORD_KEY]).decode())


async def ensure_credentials(client: KubeClient, *, namespace: str = SECRET_NAMESPACE) -> Credentials:
    try:
        found = _read(await client.get(SECRETS, namespace, SECRET_NAME))
        if found is not None:
            return found
        raise ApiError(422, "Invalid", f"Secret {namespace}/{SECRET_NAME} lacks {USER_KEY} or {PASSWORD_KEY}")
    except ApiError as error:
        if error.status != 404:
            raise
    password = secrets.token_urlsafe(24)
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": SECRET_NAME, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "knserve", "app.kubernetes.io/component": "gateway"}},
        "data": {USER_KEY: base64.b64encode(DEFAULT_USER.encode()).decode(),
                 PASSWORD_KEY: base64.b64encode(password.encode()).decode()},
    }
    try:
        await client.create(SECRETS, secret)
    except ApiError as error:
        if error.status != 409:
            raise
        found = _read(await client.get(SECRETS, namespace, SECRET_NAME))  # another replica made it first
        if found is None:
            raise
        return found
    return Credentials(DEFAULT_USER, password)
