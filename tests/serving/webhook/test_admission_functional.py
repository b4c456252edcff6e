"""The webhook behind a real API server: defaults appear on stored objects and the rules CEL
cannot express are refused in Knative's words.

The webhook configurations select only this test's namespace and are removed afterwards, so
other tests sharing the cluster never call a webhook that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube.client import connect
from serving.apis.crds import OUTPUT_DIR as RESOURCES
from serving.config import ConfigSnapshot
from serving.webhook.registration import mutating_webhook_configuration, validating_webhook_configuration
from serving.webhook.server import WebhookServer, server_ssl_context
from tests.serving.webhook.certs import make_certs
from tests.support.factories import HELLO_WORLD_YAML, service, with_annotations


async def kubectl(cluster: Any, *args: str, input: str | None = None) -> Any:
    # kubectl blocks; run it off the loop so the webhook (on this loop) can answer the API server
    return await asyncio.to_thread(cluster.kubectl, *args, check=False, input=input)


@pytest.fixture
async def webhook(cluster: Any, namespace: str, tmp_path: Path) -> AsyncIterator[Any]:
    await kubectl(cluster, "apply", "-f", str(RESOURCES))
    await kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s", "crd/services.serving.knative.dev")
    cert, key, ca = make_certs(tmp_path)
    client = await connect(str(cluster.kubeconfig))
    server = WebhookServer(lambda: ConfigSnapshot(), host="127.0.0.1", port=0, client=client,
                           ssl_context=server_ssl_context(str(cert), str(key)))
    await server.start()
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    url = f"https://127.0.0.1:{server.port}"
    configurations = [
        validating_webhook_configuration(ca_pem=ca, url=url, name=f"validation-{namespace}", namespace_selector=selector),
        mutating_webhook_configuration(ca_pem=ca, url=url, name=f"defaulting-{namespace}", namespace_selector=selector),
    ]
    text = yaml.safe_dump_all(configurations)
    created = await kubectl(cluster, "apply", "-f", "-", input=text)
    assert created.returncode == 0, created.stderr
    try:
        yield cluster
    finally:
        await kubectl(cluster, "delete", "-f", "-", "--ignore-not-found", input=text)
        await server.stop()
        await client.close()


async def test_hello_world_is_defaulted(webhook: Any, namespace: str) -> None:
    result = await kubectl(webhook, "apply", "-n", namespace, "-f", "-", input=HELLO_WORLD_YAML)
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load((await kubectl(webhook, "get", "ksvc", "hello", "-n", namespace, "-o", "yaml")).stdout)
    assert stored["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    template = stored["spec"]["template"]["spec"]
    assert (template["timeoutSeconds"], template["containerConcurrency"], template["enableServiceLinks"]) == (300, 0, False)
    assert template["containers"][0]["name"] == "user-container"
    assert template["containers"][0]["readinessProbe"] == {"successThreshold": 1, "tcpSocket": {"port": 0}}
    assert "serving.knative.dev/creator" in stored["metadata"]["annotations"]


async def test_rules_beyond_cel_are_refused(webhook: Any, namespace: str) -> None:
    doc = service("annotated", with_annotations({"autoscaling.knative.dev/min-scale": "1"}))
    doc["metadata"].pop("namespace")
    result = await kubectl(webhook, "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    assert result.returncode != 0
    assert 'denied the request: validation failed: invalid key name "autoscaling.knative.dev/min-scale": metadata.annotations' in result.stderr


async def test_a_pod_kubernetes_refuses_is_refused_when_the_service_asks_for_a_dry_run(
    webhook: Any, namespace: str
) -> None:
    doc = yaml.safe_load(HELLO_WORLD_YAML)
    doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    unasked = await kubectl(webhook, "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    assert unasked.returncode == 0, unasked.stderr  # config-features' default: dry run only when asked
    doc["metadata"]["annotations"] = {"features.knative.dev/podspec-dryrun": "enabled"}
    asked = await kubectl(webhook, "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    assert asked.returncode != 0
    assert "denied the request: validation failed: dry run failed with " in asked.stderr, asked.stderr
    assert "must be less than or equal to cpu limit" in asked.stderr, asked.stderr
    assert asked.stderr.rstrip().endswith(": spec.template"), asked.stderr
