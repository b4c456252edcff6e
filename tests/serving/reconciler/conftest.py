"""Fixtures for the controller's integration tests: CRDs and ConfigMaps applied once, and
the controller running as a subprocess (``python -m knserve.cli controller``) against the
session's real API server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.serving.reconciler.helpers import REPO, ControllerProcess


def apply_serving_resources(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "config" / "300-resources"))
    for crd in ("services", "configurations", "revisions", "routes"):
        cluster.kubectl("wait", "--for=condition=established", "--timeout=60s",
                        f"crd/{crd}.serving.knative.dev")
    cluster.kubectl("wait", "--for=condition=established", "--timeout=60s",
                    "crd/podautoscalers.autoscaling.internal.knative.dev")
    if cluster.kubectl("get", "namespace", "knative-serving", check=False).returncode != 0:
        cluster.kubectl("create", "namespace", "knative-serving")
    cluster.kubectl("apply", "-f", str(REPO / "config" / "configmaps"))
    images = REPO / "config" / "local" / "knserve-images.yaml"
    if images.exists():
        cluster.kubectl("apply", "-f", str(images))


@pytest.fixture(scope="session")
def controller(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    apply_serving_resources(cluster)
    process = ControllerProcess(cluster, tmp_path_factory.mktemp("controller") / "controller.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


