"""The image map: which command an image runs, by Kubernetes' command/args rules."""

from __future__ import annotations

import pytest

from node.images import (
    ImageEntrypoint,
    ImageMapError,
    command_line,
    lookup,
    parse_entry,
    parse_map,
    reference_candidates,
)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        pytest.param(
            "image: ghcr.io/acme/app\ncommand: [python3, -m, app]",
            ("ghcr.io/acme/app", ImageEntrypoint(("python3", "-m", "app"))),
            id="yaml lists",
        ),
        pytest.param(
            '{"image": "ghcr.io/acme/app", "command": ["serve"], "args": ["--port", "8080"]}',
            ("ghcr.io/acme/app", ImageEntrypoint(("serve",), ("--port", "8080"))),
            id="json",
        ),
        pytest.param(
            "image: app\ncommand: python3 -m 'my app'",
            ("app", ImageEntrypoint(("python3", "-m", "my app"))),
            id="command line string",
        ),
    ],
)
def test_parse_entry(value: str, want: tuple[str, ImageEntrypoint]) -> None:
    assert parse_entry("hello", value) == want


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("command: [x]", "has no image", id="no image"),
        pytest.param("image: app\ncommand: [1, 2]", "command must be a list of strings", id="numbers"),
        pytest.param("[", "is not YAML or JSON", id="broken"),
        pytest.param("- a\n- b", "must be a mapping", id="a list"),
        pytest.param("image: app", "has neither command nor args", id="nothing to run"),
        pytest.param("image: app\ncommand: \"python3 'unclosed\"", "is not a command line", id="unbalanced quote"),
    ],
)
def test_bad_entries_name_their_key(value: str, message: str) -> None:
    with pytest.raises(ImageMapError) as raised:
        parse_entry("hello", value)
    assert "'hello'" in str(raised.value)
    assert message in str(raised.value)


def test_parse_map_keeps_good_entries_and_reports_bad_ones() -> None:
    entries, problems = parse_map({"good": "image: a\ncommand: [run]", "bad": "command: [x]"})
    assert entries == {"a": ImageEntrypoint(("run",))}
    assert problems == ["image map entry 'bad' has no image"]


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
    entries = {"ghcr.io/acme/app": ImageEntrypoint(("generic",)), "ghcr.io/acme/app:v2": ImageEntrypoint(("pinned",))}
    assert lookup(entries, "ghcr.io/acme/app:v2@sha256:abc") == ImageEntrypoint(("pinned",))
    assert lookup(entries, "ghcr.io/acme/app:v3") == ImageEntrypoint(("generic",))
    assert lookup(entries, "ghcr.io/other/app") is None


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
