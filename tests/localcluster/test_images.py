"""Image archives made without a registry, as ``ctr images import`` reads them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from localcluster.images import ImageFile, image_archive, layer_image_archive


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_archive_names_the_tag_config_and_layer_by_their_digests() -> None:
    archive = image_archive("registry.k8s.io/pause:3.10", [ImageFile("/pause", b"\x7fELF...")], entrypoint=["/pause"])
    members = _members(archive)
    [manifest] = json.loads(members["manifest.json"])
    assert manifest["RepoTags"] == ["registry.k8s.io/pause:3.10"]
    config = json.loads(members[manifest["Config"]])
    layer = members[manifest["Layers"][0]]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "65535:65535"
    assert manifest["Config"] == hashlib.sha256(members[manifest["Config"]]).hexdigest() + ".json"


def test_layer_holds_the_files_executable_with_their_directories() -> None:
    archive = image_archive("x/app:1", [ImageFile("/usr/bin/app", b"binary"), ImageFile("/etc/app.conf", b"a=1", 0o644)],
                            entrypoint=["/usr/bin/app"], exposed_ports=[8080])
    members = _members(archive)
    [manifest] = json.loads(members["manifest.json"])
    with tarfile.open(fileobj=io.BytesIO(members[manifest["Layers"][0]])) as layer:
        entries = {m.name: m for m in layer.getmembers()}
    assert entries["usr/bin/app"].mode == 0o755 and entries["etc/app.conf"].mode == 0o644
    assert entries["usr/bin"].isdir() and entries["etc"].isdir()
    assert json.loads(members[manifest["Config"]])["config"]["ExposedPorts"] == {"8080/tcp": {}}


def test_same_files_give_the_same_bytes() -> None:
    files = [ImageFile("/pause", b"same")]
    assert image_archive("a/b:1", files, entrypoint=["/pause"]) == image_archive("a/b:1", files, entrypoint=["/pause"])
    assert image_archive("a/b:1", files, entrypoint=["/pause"]) != image_archive("a/b:2", files, entrypoint=["/pause"])


def test_layer_archive_streams_an_existing_layer_with_one_history_entry(tmp_path: Path) -> None:
    layer = tmp_path / "rootfs.tar"
    layer.write_bytes(_layer_bytes())
    archive = layer_image_archive("python:3.11-slim", layer, tmp_path / "image.tar", cmd=["python3"])
    members = _members(archive.read_bytes())
    [manifest] = json.loads(members["manifest.json"])
    config = json.loads(members[manifest["Config"]])
    assert manifest["RepoTags"] == ["python:3.11-slim"]
    assert members[manifest["Layers"][0]] == layer.read_bytes()
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer.read_bytes()).hexdigest()}"]
    assert len(config["history"]) == 1 and config["config"]["Cmd"] == ["python3"]


def _layer_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        layer.addfile(info, io.BytesIO(b"base\n"))
    return buffer.getvalue()
