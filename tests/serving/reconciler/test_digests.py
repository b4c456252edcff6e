"""Revision status.containerStatuses: one entry per container with the digest its image
resolved to, never asking a registry."""

from __future__ import annotations

from typing import Any

import pytest

from serving.apis.v1 import Revision
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.revision.resources.digests import container_statuses, registry_of

DIGEST = "sha256:" + "ab" * 32


def hello_revision(*images: str, status: dict[str, Any] | None = None) -> Revision:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    if len(containers) > 1:
        containers[0]["ports"] = [{"containerPort": 8080}]
    return Revision.model_validate({
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": "hello-00001", "namespace": "default"},
        "spec": {"containers": containers, "initContainers": [{"name": "setup", "image": "busybox:1"}]},
        "status": status or {},
    })


def pod(**image_ids: str) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"name": name, "imageID": image_id}
                                             for name, image_id in image_ids.items()],
                       "initContainerStatuses": [{"name": "setup", "imageID": f"docker.io/library/busybox@{DIGEST}"}]}}


@pytest.mark.parametrize(
    ("image", "pods", "want"),
    [
        pytest.param(f"ghcr.io/knative/helloworld-go@{DIGEST}", [], f"ghcr.io/knative/helloworld-go@{DIGEST}",
                     id="already pinned"),
        pytest.param("ghcr.io/knative/helloworld-go:latest", [pod(c0=f"ghcr.io/knative/helloworld-go@{DIGEST}")],
                     f"ghcr.io/knative/helloworld-go@{DIGEST}", id="reported by the node"),
        pytest.param("ghcr.io/knative/helloworld-go:latest", [pod(c0="")], None, id="not resolved: no digest"),
        pytest.param("dev.local/hello:1", [pod(c0=f"dev.local/hello@{DIGEST}")], None, id="skipped registry"),
        pytest.param("registry.local:5000/hello:1", [pod(c0=f"x@{DIGEST}")], None, id=".local registry"),
    ],
)
def test_container_digest(image: str, pods: list[dict[str, Any]], want: str | None) -> None:
    statuses, _ = container_statuses(hello_revision(image), ConfigSnapshot(), pods)
    assert [(s.name, s.image_digest) for s in statuses or []] == [("c0", want)]


def test_every_container_and_init_container_has_an_entry() -> None:
    statuses, init = container_statuses(hello_revision("ghcr.io/a/app:1", "ghcr.io/a/sidecar:1"), ConfigSnapshot(),
                                        [pod(c1=f"ghcr.io/a/sidecar@{DIGEST}")])
    assert [s.to_dict() for s in statuses or []] == [
        {"name": "c0"}, {"name": "c1", "imageDigest": f"ghcr.io/a/sidecar@{DIGEST}"}]
    assert [s.to_dict() for s in init or []] == [{"name": "setup", "imageDigest": f"busybox@{DIGEST}"}]


def test_a_resolved_digest_is_kept_when_the_pods_are_gone() -> None:
    known = {"containerStatuses": [{"name": "c0", "imageDigest": f"ghcr.io/a/app@{DIGEST}"}]}
    statuses, _ = container_statuses(hello_revision("ghcr.io/a/app:1", status=known), ConfigSnapshot(), [])
    assert [s.image_digest for s in statuses or []] == [f"ghcr.io/a/app@{DIGEST}"]


def test_skipped_registries_follow_config_deployment() -> None:
    config = ConfigSnapshot.from_configmaps({"config-deployment": {"registries-skipping-tag-resolving": "ghcr.io"}})
    statuses, _ = container_statuses(hello_revision("ghcr.io/a/app:1"), config, [pod(c0=f"ghcr.io/a/app@{DIGEST}")])
    assert [s.image_digest for s in statuses or []] == [None]
    assert (registry_of("busybox:1"), registry_of("localhost/x:1")) == ("index.docker.io", "localhost")
