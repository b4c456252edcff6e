"""Names of the resources knserve gives Envoy: listeners, route configurations, clusters.

Pure functions and constants; no side effects.
"""

from __future__ import annotations

from typing import Final

from serving.xds.model import RevisionKey

EXTERNAL: Final = "external"
"""The external listener and its route configuration (ExternalIP rules)."""
INTERNAL: Final = "internal"
"""The internal listener and its route configuration (ClusterLocal rules, plus the ExternalIP ones)."""


QUEUE_CLUSTER: Final = "knserve-queue"
"""The call queue's cluster (no ``/``, so no revision's cluster can have its name)."""


def cluster_name(revision: RevisionKey) -> str:
    """``namespace/revision``: one Envoy cluster (and one EDS resource) per revision."""
    return f"{revision.namespace}/{revision.revision}"
