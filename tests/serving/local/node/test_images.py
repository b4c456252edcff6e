"""The image map: which command an image runs, by Kubernetes' command/args rules."""

from __future__ import annotations

import pytest

from serving.local.node.images import (
    ImageEntrypoint,
    ImageMapError,
    command_line,
    lookup,
    parse_entry,
    reference_candidates,
)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        pytest.param('["python3", "-m", "app"]', ImageEntrypoint(("python3", "-m", "app")), id="json list"),
        pytest.param(
            '{"command": ["serve"], "args": ["--port", "8080"]}',
            ImageEntrypoint(("serve",), ("--port", "8080")),
            id="json object",
        ),
        pytest.param("python3 -m 'my app'", ImageEntrypoint(("python3", "-m", "my app")), id="shell words"),
    ],
)
def test_parse_entry(value: str, want: ImageEntrypoint) -> None:
    assert parse_entry("img", value) == want


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("[1, 2]", "must be a non-empty list of strings", id="list of numbers"),
        pytest.param("[", "is not valid JSON", id="broken json"),
        pytest.param("   ", "is empty", id="blank"),
        pytest.param("python3 'unclosed", "is not a command line", id="unbalanced quote"),
    ],
)
def test_bad_entries_name_the_image(value: str, message: str) -> None:
    with pytest.raises(ImageMapError) as raised:
        parse_entry("ghcr.io/acme/app", value)
    assert "'ghcr.io/acme/app'" in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("image", "want"),
    [
        pytest.param("ghcr.io/acme/app:v2", ["ghcr.io/acme/app:v2", "ghcr.io/acme/app"], id="tag"),
        pytest.param(
            "ghcr.io/acme/app:v2@sha256:abc",
            ["ghcr.io/acme/app:v2@sha256:abc", "ghcr.io/acme/app:v2", "ghcr.io/acme/app"],
            id="tag and digest",
        ),
        pytest.param("localhost:5000/app", ["localhost:5000/app"], id="registry port is not a tag"),
        pytest.param("app@sha256:abc", ["app@sha256:abc", "app"], id="digest only"),
    ],
)
def test_reference_candidates(image: str, want: list[str]) -> None:
    assert reference_candidates(image) == want


def test_lookup_prefers_the_most_specific_key() -> None:
    image_map = {"ghcr.io/acme/app": "generic", "ghcr.io/acme/app:v2": "pinned"}
    assert lookup(image_map, "ghcr.io/acme/app:v2@sha256:abc") == ImageEntrypoint(("pinned",))
    assert lookup(image_map, "ghcr.io/acme/app:v3") == ImageEntrypoint(("generic",))
    assert lookup(image_map, "ghcr.io/other/app") is None


@pytest.mark.parametrize(
    ("container", "entrypoint", "want"),
    [
        pytest.param({"command": ["a"], "args": ["b"]}, ImageEntrypoint(("x",), ("y",)), ["a", "b"], id="command wins"),
        pytest.param({"args": ["b"]}, ImageEntrypoint(("x",), ("y",)), ["x", "b"], id="args replace image args"),
        pytest.param({}, ImageEntrypoint(("x",), ("y",)), ["x", "y"], id="image entrypoint and args"),
        pytest.param({}, None, None, id="nothing to run"),
        pytest.param({"args": ["b"]}, None, None, id="args without entrypoint"),
        pytest.param({"args": ["b", "c"]}, ImageEntrypoint((), ("y",)), ["b", "c"], id="image with only args"),
    ],
)
def test_command_line(container: dict, entrypoint: ImageEntrypoint | None, want: list[str] | None) -> None:
    assert command_line(container, entrypoint) == want
