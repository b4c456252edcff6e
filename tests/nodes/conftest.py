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
