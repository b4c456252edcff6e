"""The containerd node's Debian packages: what is missing is installed, or the user is told how."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from localcluster.nodesetup import SetupError, ensure_packages


class FakeApt:
    def __init__(self, installed: set[str], *, install_fails: bool = False) -> None:
        self.installed = installed
        self.install_fails = install_fails
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> tuple[int, str]:
        self.commands.append(list(command))
        if command[0] == "dpkg-query":
            return (0, "install ok installed") if command[-1] in self.installed else (1, "no packages found")
        if command[:2] == ["apt-get", "install"]:
            if self.install_fails:
                return 100, "E: Unable to locate package runc"
            self.installed |= {c for c in command[2:] if not c.startswith("-")}
        return 0, ""


def test_installs_only_what_is_missing() -> None:
    apt = FakeApt({"containerd"})
    installed = ensure_packages(("containerd", "runc", "conntrack"), run=apt, progress=lambda _: None,
                                is_root=lambda: True, has_apt=lambda: True)
    assert installed == ["runc", "conntrack"]
    assert ["apt-get", "update"] in apt.commands
    assert ["apt-get", "install", "-y", "--no-install-recommends", "runc", "conntrack"] in apt.commands


def test_nothing_missing_runs_no_apt_get() -> None:
    apt = FakeApt({"containerd", "runc"})
    assert ensure_packages(("containerd", "runc"), run=apt, is_root=lambda: False, has_apt=lambda: True) == []
    assert all(command[0] == "dpkg-query" for command in apt.commands)


def test_not_root_is_told_which_packages_to_install() -> None:
    with pytest.raises(SetupError, match=r"not installed: runc\. Install them as root \(`apt-get install runc`\)"):
        ensure_packages(("containerd", "runc"), run=FakeApt({"containerd"}), is_root=lambda: False,
                        has_apt=lambda: True)


def test_failed_install_says_what_apt_get_said() -> None:
    with pytest.raises(SetupError, match="Unable to locate package runc"):
        ensure_packages(("runc",), run=FakeApt(set(), install_fails=True), progress=lambda _: None,
                        is_root=lambda: True, has_apt=lambda: True)


def test_machine_without_apt_get_names_the_packages() -> None:
    with pytest.raises(SetupError, match="no apt-get"):
        ensure_packages(("runc",), run=FakeApt(set()), is_root=lambda: True, has_apt=lambda: False)
