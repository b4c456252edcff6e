"""Kubernetes quantities and the cgroup settings a container's resources turn into."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from node.cgroups import ContainerCgroups, parse_quantity, remove_pod_cgroups


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param("128Mi", Decimal(128 * 2**20), id="binary"),
        pytest.param("1G", Decimal(10**9), id="decimal"),
        pytest.param("500m", Decimal("0.5"), id="milli"),
        pytest.param("2", Decimal(2), id="plain"),
        pytest.param("1e9", Decimal(10**9), id="exponent"),
        pytest.param(3, Decimal(3), id="a number"),
    ],
)
def test_parse_quantity(text, want: Decimal) -> None:
    assert parse_quantity(text) == want


def test_parse_quantity_refuses_what_is_not_one() -> None:
    with pytest.raises(ValueError):
        parse_quantity("lots")


def fake_root(tmp_path: Path) -> Path:
    """Two controller hierarchies whose new directories start with their control files, as the kernel makes them."""
    for controller in ("memory", "cpu"):
        (tmp_path / controller).mkdir()
    return tmp_path


def test_limits_become_the_cgroup_settings(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    cgroups = ContainerCgroups("uid-1", "app", {"limits": {"memory": "64Mi", "cpu": "250m"}, "requests": {"cpu": "100m"}},
                               root=root)
    files, problems = cgroups.create()
    group = Path("knserve/poduid-1/app")
    assert problems == ""
    assert files == [root / "memory" / group / "cgroup.procs", root / "cpu" / group / "cgroup.procs"]
    assert (root / "memory" / group / "memory.limit_in_bytes").read_text() == str(64 * 2**20)
    assert (root / "cpu" / group / "cpu.cfs_quota_us").read_text() == "25000"
    assert (root / "cpu" / group / "cpu.cfs_period_us").read_text() == "100000"
    assert (root / "cpu" / group / "cpu.shares").read_text() == "102"


def test_no_resources_no_cgroups(tmp_path: Path) -> None:
    assert not ContainerCgroups("uid-1", "app", {}, root=fake_root(tmp_path)).wanted


def test_oom_kills_counted_since_the_start(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    cgroups = ContainerCgroups("uid-1", "app", {"limits": {"memory": "1Gi"}}, root=root)
    control = root / "memory/knserve/poduid-1/app/memory.oom_control"
    control.parent.mkdir(parents=True)
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    cgroups.create()
    assert not cgroups.oom_killed()
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert cgroups.oom_killed()


def test_unwritable_hierarchy_is_reported_not_fatal(tmp_path: Path) -> None:
    files, problems = ContainerCgroups("uid-1", "app", {"limits": {"memory": "1Gi"}}, root=tmp_path / "none").create()
    assert files == []
    assert problems.startswith("memory limit not enforced")


def test_remove_pod_cgroups_leaves_nothing_of_the_pod(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "memory/knserve/poduid-1/app").mkdir(parents=True)
    (root / "cpu/knserve/poduid-1/app").mkdir(parents=True)
    (root / "cpu/knserve/poduid-2/app").mkdir(parents=True)
    remove_pod_cgroups("uid-1", root=root)
    assert not (root / "memory/knserve/poduid-1").exists()
    assert not (root / "cpu/knserve/poduid-1").exists()
    assert (root / "cpu/knserve/poduid-2/app").exists()
