"""Real-node tests (kubelet + containerd): collected only with ``KNSERVE_NODE_TESTS=1``
(``make test-nodes``, and ``make test`` after the rest of the suite).

They need root, the node's Debian packages (installed here through ``localcluster.nodesetup``
when missing) and the node binaries (built through ``localcluster.binaries``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import binaries, nodesetup
from localcluster.controlplane import Ports
from localcluster.realcluster import ContainerdCluster, RealNodesControlPlane

collect_ignore_glob = [] if os.environ.get("KNSERVE_NODE_TESTS") == "1" else ["test_*.py"]

NODE_TEST_TIMEOUT = 1200
"""Seconds a real-node test may take with its module's cluster set-up, which in a fresh checkout
or with empty caches includes building the base images and knserve's image (the suite's 300 s
is for tests whose set-up is a process node)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.timeout(NODE_TEST_TIMEOUT))

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerdCluster]:
    """Two containerd nodes with knserve installed from ``config/``; each module gets its own."""
    nodesetup.ensure_packages()
    control_plane = RealNodesControlPlane(tmp_path_factory.mktemp("two-nodes") / "state", binaries.ensure_binaries(),
                                          ports=Ports.free())
    real = ContainerdCluster(control_plane, binaries.ensure_node_binaries(), nodes=2)
    try:
        real.start(progress=lambda _: None)
        real.start_addons(progress=lambda _: None)
        real.install_knserve(REPOSITORY, progress=lambda _: None)
        yield real
    finally:
        real.stop(progress=lambda _: None)
