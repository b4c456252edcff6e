"""Who a container runs as, from its securityContext, its pod's and its image's user."""

from __future__ import annotations

from typing import Any

import pytest

from node.processes import Identity
from node.security import IdentityRefused, container_identity


def pod(pod_context: dict[str, Any] | None = None, container_context: dict[str, Any] | None = None) -> tuple[dict, dict]:
    container: dict[str, Any] = {"name": "app"}
    if container_context is not None:
        container["securityContext"] = container_context
    spec: dict[str, Any] = {"containers": [container]}
    if pod_context is not None:
        spec["securityContext"] = pod_context
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec}, container


@pytest.mark.parametrize(
    ("pod_context", "container_context", "image_user", "want"),
    [
        pytest.param(None, None, None, None, id="nothing asked: as the agent runs"),
        pytest.param({"runAsUser": 4242}, None, None, Identity(4242, 0, (0,)), id="pod user unknown here, no group: 0"),
        pytest.param({"runAsUser": 1000, "runAsGroup": 50}, {"runAsUser": 7}, None, Identity(7, 50, (50,)),
                     id="container user wins, pod group"),
        pytest.param(None, None, "65532:65532", Identity(65532, 65532, (65532,)), id="image user"),
        pytest.param(None, {"runAsUser": 4243}, "65532:65532", Identity(4243, 0, (0,)), id="runAsUser beats the image"),
        pytest.param({"supplementalGroups": [10, 11], "fsGroup": 12}, None, None, Identity(0, 0, (0, 10, 11, 12)),
                     id="groups alone"),
        pytest.param({"runAsNonRoot": True}, None, "65534", Identity(65534, 65534, (65534,)),
                     id="non-root by the image: nobody's group from the host"),
    ],
)
def test_container_identity(pod_context, container_context, image_user, want) -> None:
    pod_object, container = pod(pod_context, container_context)
    assert container_identity(pod_object, container, image_user=image_user) == want


@pytest.mark.parametrize(
    ("pod_context", "container_context", "image_user", "message"),
    [
        pytest.param({"runAsNonRoot": True}, None, None, "container has runAsNonRoot and image will run as root",
                     id="no user"),
        pytest.param(None, {"runAsNonRoot": True, "runAsUser": 0}, None, "container's runAsUser breaks non-root policy",
                     id="explicit root"),
        pytest.param(None, {"runAsNonRoot": True}, "no-such-user-here",
                     "container has runAsNonRoot and image has non-numeric user (no-such-user-here)", id="unknown name"),
        pytest.param(None, None, "no-such-user-here", 'the image\'s user "no-such-user-here" does not exist',
                     id="unknown name without the policy"),
    ],
)
def test_refusals_say_why(pod_context, container_context, image_user, message: str) -> None:
    pod_object, container = pod(pod_context, container_context)
    with pytest.raises(IdentityRefused) as refused:
        container_identity(pod_object, container, image_user=image_user)
    assert str(refused.value).startswith(message)
    if "runAsNonRoot" in message or "non-root" in message:
        assert 'pod: "p_ns(u)", container: app' in str(refused.value)
