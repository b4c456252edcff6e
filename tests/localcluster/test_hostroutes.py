"""The host's unreachable routes as clusters sharing a machine rely on them: installed by the
first cluster, kept when it stops, removed on request only when no other cluster runs; never
taken from someone else's route. ``ip`` is a fake routing table here (test_network_functional.py runs
the real one)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from localcluster.controlplane import HOST_BLOCKED_RANGES, POD_NETWORK, SERVICE_CLUSTER_IP_RANGE
from localcluster.hostroutes import ROUTE_PROTOCOL, STARTING_GRACE_SECONDS, HostRoutes
from localcluster.processes import StartError
from node.network import DEFAULT_POD_NETWORK


class FakeIp:
    """The main routing table: ``(type, network, protocol)`` rows, or a route ``via`` somewhere."""

    def __init__(self, *rows: str) -> None:
        self.rows = list(rows)

    def __call__(self, args: Sequence[str]) -> tuple[int, str]:
        match list(args):
            case ["route", "add", kind, network, "proto", protocol]:
                if any(network in row.split()[:2] for row in self.rows):  # one route per prefix and metric
                    return 2, "RTNETLINK answers: File exists"
                self.rows.append(f"{kind} {network} proto {protocol}")
                return 0, ""
            case ["route", "del", kind, network, "proto", protocol]:
                row = f"{kind} {network} proto {protocol}"
                if row not in self.rows:
                    return 2, "RTNETLINK answers: No such process"
                self.rows.remove(row)
                return 0, ""
            case ["-o", "route", "show", "exact", network]:
                return 0, "\n".join(row for row in self.rows if network in row.split()[:2])
        raise AssertionError(f"unexpected ip {args}")


def routes(ip: FakeIp, tmp_path: Path) -> HostRoutes:
    return HostRoutes(("10.96.0.0/16", "10.244.0.0/16"), registry=tmp_path / "registry", run=ip, allowed=lambda: True)


def ours(*networks: str) -> list[str]:
    return [f"unreachable {network} proto {ROUTE_PROTOCOL}" for network in networks]


def state(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    return directory


def test_the_cluster_blocks_its_service_and_pod_ranges():
    assert HOST_BLOCKED_RANGES == (SERVICE_CLUSTER_IP_RANGE, POD_NETWORK)
    assert POD_NETWORK == str(DEFAULT_POD_NETWORK)


def test_install_adds_one_route_per_range_and_a_second_install_changes_nothing(tmp_path):
    ip = FakeIp("default via 192.0.2.1 dev eth0")
    host = routes(ip, tmp_path)
    host.install(state(tmp_path, "a"), progress=print)
    host.install(tmp_path / "a", progress=print)
    assert ip.rows == ["default via 192.0.2.1 dev eth0", *ours("10.96.0.0/16", "10.244.0.0/16")]


def test_a_cluster_that_stops_leaves_the_routes_unless_asked_but_unregisters(tmp_path):
    ip = FakeIp()
    host = routes(ip, tmp_path)
    host.install(state(tmp_path, "a"), progress=print)
    host.release(tmp_path / "a", running=lambda directory: False, remove=False, progress=print)
    assert ip.rows == ours("10.96.0.0/16", "10.244.0.0/16")
    assert host.users(running=lambda directory: True) == []


def test_the_routes_stay_while_another_cluster_runs_and_go_with_the_last(tmp_path):
    ip = FakeIp()
    host = routes(ip, tmp_path)
    developer, tests = state(tmp_path, "developer"), state(tmp_path, "tests")
    host.install(developer, progress=print)
    host.install(tests, progress=print)
    said: list[str] = []
    host.release(tests, running=lambda directory: directory == developer, remove=True, progress=said.append)
    assert ip.rows == ours("10.96.0.0/16", "10.244.0.0/16")
    assert str(developer) in said[0]
    host.release(developer, running=lambda directory: False, remove=True, progress=said.append)
    assert ip.rows == []


def test_a_registration_counts_while_its_cluster_starts_but_not_once_it_is_long_gone(tmp_path):
    ip = FakeIp()
    host = routes(ip, tmp_path)
    starting, killed, removed, leaving = (state(tmp_path, name) for name in ("starting", "killed", "removed", "leaving"))
    for directory in (starting, killed, removed, leaving):
        host.install(directory, progress=print)
    long_ago = time.time() - STARTING_GRACE_SECONDS - 1
    os.utime(host._entry(killed), (long_ago, long_ago))
    removed.rmdir()
    host.release(leaving, running=lambda directory: False, remove=True, progress=print)
    assert ip.rows == ours("10.96.0.0/16", "10.244.0.0/16")  # the one still starting needs them
    assert host.users(running=lambda directory: False) == [starting.resolve()]
    assert sorted(entry.name for entry in (tmp_path / "registry").iterdir() if not entry.name.startswith(".")) == [
        host._entry(starting).name]


def test_a_blocking_route_someone_else_made_is_used_and_left_in_place(tmp_path):
    ip = FakeIp("blackhole 10.96.0.0/16")
    host = routes(ip, tmp_path)
    host.install(state(tmp_path, "a"), progress=print)
    host.release(tmp_path / "a", running=lambda directory: False, remove=True, progress=print)
    assert ip.rows == ["blackhole 10.96.0.0/16"]


def test_a_route_that_leads_off_the_machine_stops_the_start(tmp_path):
    ip = FakeIp("10.244.0.0/16 via 192.0.2.7 dev eth0")
    with pytest.raises(StartError, match=r"already routes 10\.244\.0\.0/16 \(10\.244\.0\.0/16 via 192\.0\.2\.7"):
        routes(ip, tmp_path).install(state(tmp_path, "a"), progress=print)


def test_without_root_nothing_is_touched_and_the_user_is_told(tmp_path):
    ip = FakeIp()
    host = HostRoutes(("10.96.0.0/16",), registry=tmp_path / "registry", run=ip, allowed=lambda: False)
    said: list[str] = []
    host.install(state(tmp_path, "a"), progress=said.append)
    assert ip.rows == []
    assert "not running as root" in said[0] and "10.96.0.0/16" in said[0]
