"""The local registry's answers, from an OCI image layout, as containerd asks for images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from localcluster.registry import Layout

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _blob(layout: Path, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(content)
    return f"sha256:{digest}"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Layout, str, str]:
    layer = _blob(tmp_path, b"layer bytes")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": [{"digest": layer}]}).encode()
    manifest_digest = _blob(tmp_path, manifest)
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST_TYPE, "digest": manifest_digest, "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "ghcr.io/knative/helloworld-go:latest"}}]}))
    return Layout(tmp_path), manifest_digest, layer


def test_manifest_by_the_registry_containerd_names_and_tag(layout: tuple[Layout, str, str]) -> None:
    registry, manifest_digest, _ = layout
    answer = registry.answer("/v2/knative/helloworld-go/manifests/latest", "ns=ghcr.io")
    assert (answer.status, answer.content_type, answer.digest) == (200, MANIFEST_TYPE, manifest_digest)
    assert json.loads(answer.body)["layers"]


def test_same_repository_of_another_registry_is_unknown(layout: tuple[Layout, str, str]) -> None:
    registry, _, _ = layout
    assert registry.answer("/v2/knative/helloworld-go/manifests/latest", "ns=gcr.io").status == 404
    assert registry.answer("/v2/knative/helloworld-go/manifests/v2", "ns=ghcr.io").status == 404


def test_manifest_and_blob_by_digest(layout: tuple[Layout, str, str]) -> None:
    registry, manifest_digest, layer = layout
    assert registry.answer(f"/v2/knative/helloworld-go/manifests/{manifest_digest}", "ns=ghcr.io").digest == manifest_digest
    blob = registry.answer(f"/v2/knative/helloworld-go/blobs/{layer}", "ns=ghcr.io")
    assert blob.status == 200 and blob.file is not None and blob.file.read_bytes() == b"layer bytes"
    assert blob.size == len(b"layer bytes")


def test_version_check_and_unknown_paths(layout: tuple[Layout, str, str]) -> None:
    registry, _, _ = layout
    assert registry.answer("/v2/", "").status == 200
    assert registry.answer("/v2/x/blobs/sha256:" + "0" * 64, "").status == 404
    assert registry.answer("/v2/x/blobs/../../etc/passwd", "").status == 404
    assert registry.answer("/other", "").status == 404
