"""Real-node tests (kubelet + containerd): collected only with ``KNSERVE_NODE_TESTS=1``
(``make test-nodes``), until they are fast and steady enough for ``make test``.

They need root, the node's Debian packages (installed here through ``localcluster.nodesetup``
when missing) and the node binaries (built through ``localcluster.binaries``).
"""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("KNSERVE_NODE_TESTS") == "1" else ["test_*.py"]
