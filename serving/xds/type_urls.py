"""xDS resource type URLs, and the order ADS sends them in.

Pure constants; no side effects.
"""

from __future__ import annotations

from typing import Final

_PREFIX: Final = "type.googleapis.com/"

CLUSTER: Final = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT: Final = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER: Final = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE: Final = _PREFIX + "envoy.config.route.v3.RouteConfiguration"

ADS_ORDER: Final = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
"""Make before break: clusters, their endpoints, then the listeners and routes that use them."""

WILDCARD_TYPES: Final = frozenset({CLUSTER, LISTENER})
"""Types Envoy subscribes to as a whole; for the others it names the resources it wants."""

SHORT_NAMES: Final = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS"}
