"""The debootstrap base images: where their packages come from and how they are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster.baseimages import NODE_BASE, PYTHON_BASE, BaseImageError, apt_mirror


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\nComponents: main\n")
    assert apt_mirror(sources, tmp_path / "missing") == "http://mirror.invalid/debian"


def test_mirror_from_a_legacy_sources_list(tmp_path: Path) -> None:
    legacy = tmp_path / "sources.list"
    legacy.write_text("# comment\ndeb [arch=amd64] http://mirror.invalid/debian bookworm main\n")
    assert apt_mirror(tmp_path / "missing", legacy) == "http://mirror.invalid/debian"


def test_no_mirror_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(BaseImageError, match="found no Debian mirror"):
        apt_mirror(tmp_path / "a", tmp_path / "b")


def test_base_images_stand_in_for_the_containerfiles_bases() -> None:
    containerfile = (Path(__file__).parents[2] / "Containerfile").read_text()
    assert f"FROM {PYTHON_BASE.tag}" in containerfile and f"FROM {NODE_BASE.tag}" in containerfile
    assert "python-is-python3" in PYTHON_BASE.packages and "npm" in NODE_BASE.later
    assert PYTHON_BASE.layer_name != NODE_BASE.layer_name
