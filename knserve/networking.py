"""Names shared by every component: ports, headers, labels and the stats wire format.

These follow Knative Serving's public contract, so clients and tooling that know Knative
find the same names here. Pure constants; no side effects.
"""

from __future__ import annotations

from typing import Final

# --- ports (queue-proxy sidecar; also the activator's data port) -------------------------
QUEUE_HTTP_PORT: Final = 8012
QUEUE_HTTPS_PORT: Final = 8112
QUEUE_ADMIN_PORT: Final = 8022  # /wait-for-drain
AUTOSCALING_STATS_PORT: Final = 9090  # per-pod stats the autoscaler scrapes
USER_METRICS_PORT: Final = 9091  # Prometheus text
PROFILING_PORT: Final = 8008
QUEUE_HTTP_PORT_NAME: Final = "http"
QUEUE_H2C_PORT_NAME: Final = "h2c"
# A user container may not listen on these, nor set these variables. Knative's order, in which its
# messages list them (the CRDs' CEL rules print them).
RESERVED_PORTS: Final = (8012, 8013, 8022, 9090, 9091, 8008)
RESERVED_ENV: Final = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
DEFAULT_USER_PORT: Final = 8080

ACTIVATOR_SERVICE_NAME: Final = "activator-service"
AUTOSCALER_SERVICE_NAME: Final = "autoscaler"
AUTOSCALER_PORT: Final = 8080  # activator -> autoscaler stats push and poke
# The activator and autoscaler close a connection that has sent no complete request for
# this long since it opened or since its last answer: idle and half-sent ones alike (the
# queue-proxy's header timeout). The ingress lets its upstream connections idle for less.
SERVER_IDLE_TIMEOUT_SECONDS: Final = 60.0
SYSTEM_NAMESPACE: Final = "knative-serving"

# --- headers ---------------------------------------------------------------------------
REVISION_HEADER: Final = "Knative-Serving-Revision"
NAMESPACE_HEADER: Final = "Knative-Serving-Namespace"
ORIGINAL_HOST_HEADER: Final = "K-Original-Host"
PROBE_HEADER: Final = "K-Network-Probe"
PROBE_HEADER_QUEUE_VALUE: Final = "queue"
PROXY_HEADER: Final = "K-Proxy-Request"  # value "activator" on requests the activator forwards
PROXY_HEADER_ACTIVATOR_VALUE: Final = "activator"
HASH_HEADER: Final = "K-Network-Hash"
KUBELET_PROBE_USER_AGENT_PREFIX: Final = "kube-probe/"
KUBELET_PROBE_HEADER: Final = "K-Kubelet-Probe"  # Knative's older marker of kubelet probes
PASSTHROUGH_LB_HEADER: Final = "K-Passthrough-Lb"
INGRESS_TOKEN_HEADER: Final = "K-Network-Ingress-Token"
"""Envoy adds the ingress token (Secret knserve-ingress-token) to every request it routes: the
activator serves only requests carrying it; the queue-proxy drops it before the app."""
CALL_DISPATCH_HEADER: Final = "K-Call-Dispatch"
"""The call queue marks its own dispatches with it, its value the ingress token. For a Service
with ``knserve.dev/async: always`` Envoy sends to the queue every request whose value is not
exactly the token (a client cannot guess it), and removes the header from every request it
routes, so no app sees it. It is not stripped as a request arrives (as the internal headers
below are): the queue's dispatches come in through the same listener as clients' requests."""
# Headers knserve's own components set between themselves (Knative's internal headers). The
# ingress removes every one of them from the requests it receives, so a client cannot
# forge a probe, a Host, a revision or the activator's mark.
INTERNAL_HEADER_PREFIXES: Final = ("K-Network-", "Knative-Serving-")
INTERNAL_HEADERS: Final = (ORIGINAL_HOST_HEADER, PROXY_HEADER, KUBELET_PROBE_HEADER, PASSTHROUGH_LB_HEADER)

# --- labels and annotations --------------------------------------------------------------
GROUP: Final = "serving.knative.dev"
SERVICE_LABEL: Final = "serving.knative.dev/service"
SERVICE_UID_LABEL: Final = "serving.knative.dev/serviceUID"
CONFIGURATION_LABEL: Final = "serving.knative.dev/configuration"
CONFIGURATION_UID_LABEL: Final = "serving.knative.dev/configurationUID"
CONFIGURATION_GENERATION_LABEL: Final = "serving.knative.dev/configurationGeneration"
REVISION_LABEL: Final = "serving.knative.dev/revision"
REVISION_UID_LABEL: Final = "serving.knative.dev/revisionUID"
ROUTE_LABEL: Final = "serving.knative.dev/route"
ROUTES_ANNOTATION: Final = "serving.knative.dev/routes"
ROUTING_STATE_LABEL: Final = "serving.knative.dev/routingState"
ROUTING_STATE_MODIFIED_ANNOTATION: Final = "serving.knative.dev/routingStateModified"
CREATOR_ANNOTATION: Final = "serving.knative.dev/creator"
UPDATER_ANNOTATION: Final = "serving.knative.dev/lastModifier"
VISIBILITY_LABEL: Final = "networking.knative.dev/visibility"
VISIBILITY_CLUSTER_LOCAL: Final = "cluster-local"
ROLLOUT_DURATION_ANNOTATION: Final = "serving.knative.dev/rollout-duration"
PROGRESS_DEADLINE_ANNOTATION: Final = "serving.knative.dev/progress-deadline"
KPA_CLASS: Final = "kpa.autoscaling.knative.dev"
AUTOSCALING_CLASS_ANNOTATION: Final = "autoscaling.knative.dev/class"

# --- queue-proxy environment (set by the controller's Deployment builder) ----------------
# Same names as Knative's queue-proxy, so the contract reads the same.
ENV_SERVING_NAMESPACE: Final = "SERVING_NAMESPACE"
ENV_SERVING_SERVICE: Final = "SERVING_SERVICE"
ENV_SERVING_CONFIGURATION: Final = "SERVING_CONFIGURATION"
ENV_SERVING_REVISION: Final = "SERVING_REVISION"
ENV_SERVING_POD: Final = "SERVING_POD"  # fieldRef metadata.name
ENV_SERVING_POD_IP: Final = "SERVING_POD_IP"  # fieldRef status.podIP
ENV_QUEUE_SERVING_PORT: Final = "QUEUE_SERVING_PORT"
ENV_USER_PORT: Final = "USER_PORT"
ENV_CONTAINER_CONCURRENCY: Final = "CONTAINER_CONCURRENCY"
ENV_REVISION_TIMEOUT_SECONDS: Final = "REVISION_TIMEOUT_SECONDS"
ENV_REVISION_RESPONSE_START_TIMEOUT_SECONDS: Final = "REVISION_RESPONSE_START_TIMEOUT_SECONDS"
ENV_REVISION_IDLE_TIMEOUT_SECONDS: Final = "REVISION_IDLE_TIMEOUT_SECONDS"
ENV_SERVING_READINESS_PROBE: Final = "SERVING_READINESS_PROBE"  # JSON of the user container's probe
ENV_USER_PORT_NAME: Final = "USER_PORT_NAME"  # "h2c" switches the app connection to HTTP/2 cleartext
ENV_DRAIN_QUIET_PERIOD_SECONDS: Final = "DRAIN_QUIET_PERIOD_SECONDS"

# --- stats wire format ---------------------------------------------------------------------
# GET http://<pod-ip>:9090/stats answers one JSON object with these keys (Knative's Stat
# fields): podName, averageConcurrentRequests, averageProxiedConcurrentRequests,
# requestCount, proxiedRequestCount, processUptime (seconds), timestamp (unix seconds).
# Each value covers the last whole second, so a scrape every second sees each bucket once.
STATS_PATH: Final = "/stats"
