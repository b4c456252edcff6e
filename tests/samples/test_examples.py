"""The examples: every YAML parses, every image they use is in the local image map, and
the image map's entries are ones the node agent reads (``node.images``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from node import images

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
IMAGE_MAP_FILE = REPO_ROOT / "config" / "local" / "knserve-images.yaml"
# func.yaml files describe functions for `knserve func deploy` (tests/functions/test_examples.py).
EXAMPLE_FILES = sorted(path for path in EXAMPLES.rglob("*.yaml") if path.name != "func.yaml")
CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # what the API server accepts


def documents(path: Path) -> list[Any]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def containers(document: Any) -> Iterator[dict[str, Any]]:
    spec = (((document.get("spec") or {}).get("template") or {}).get("spec")) or {}
    yield from spec.get("containers") or []


def image_map() -> dict[str, str]:
    (config_map,) = documents(IMAGE_MAP_FILE)
    return dict(config_map["data"])


def image_entries() -> dict[str, images.ImageEntrypoint]:
    entries, problems = images.parse_map(image_map())
    assert problems == []
    return entries


def test_the_image_map_is_the_configmap_the_node_agent_reads() -> None:
    (config_map,) = documents(IMAGE_MAP_FILE)

    assert (config_map["apiVersion"], config_map["kind"]) == ("v1", "ConfigMap")
    assert config_map["metadata"]["name"] == images.IMAGE_MAP_NAME
    assert config_map["metadata"]["namespace"] == images.IMAGE_MAP_NAMESPACE


def test_every_key_is_one_the_api_server_accepts() -> None:
    assert [key for key in image_map() if not CONFIG_MAP_KEY.fullmatch(key)] == []


def test_every_entry_parses_and_runs_a_sample_module() -> None:
    entries = image_entries()

    assert len(entries) == len(image_map())  # no image is mapped twice
    # knserve's own image runs the `knserve` entry point, the component named by its args.
    assert entries.pop("ghcr.io/knserve/knserve").command == ("knserve",)
    for image, entrypoint in entries.items():
        assert entrypoint.command[:2] == ("python3", "-m"), image
        module = entrypoint.command[2]
        assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{image} runs {module}, which is missing"


def test_there_are_examples() -> None:
    assert {path.relative_to(EXAMPLES).as_posix() for path in EXAMPLE_FILES} >= {
        "hello.yaml", "autoscale.yaml", "canary/v1.yaml", "canary/v2.yaml", "canary/split-50-50.yaml",
        "canary/rollback.yaml", "function/service.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.relative_to(EXAMPLES).as_posix())
def test_example_parses_and_its_images_are_mapped(path: Path) -> None:
    mapped = image_entries()
    found = documents(path)
    assert found, f"{path.name} holds no YAML document"
    for document in found:
        assert isinstance(document, dict)
        if "kind" not in document:  # a patch file
            assert set(document) == {"spec"}
            continue
        assert document["apiVersion"] == "serving.knative.dev/v1"
        for container in containers(document):
            entrypoint = images.lookup(mapped, container["image"])
            assert entrypoint is not None, f"{path.name}: image {container['image']} is not in the image map"


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "canary").glob("*.yaml")), ids=lambda path: path.name
)
def test_canary_traffic_adds_up_to_100(path: Path) -> None:
    for document in documents(path):
        traffic = (document.get("spec") or {}).get("traffic")
        if traffic is not None:
            assert sum(target["percent"] for target in traffic) == 100
