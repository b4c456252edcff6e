"""The CRDs on a real API server: bad input is refused in Knative's words, Knative YAML applies.

No webhook runs here: every refusal comes from the CRD's schema and CEL rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from serving.apis.crds import OUTPUT_DIR as RESOURCES
from tests.support.factories import (
    HELLO_WORLD_YAML,
    as_written,
    container,
    revision,
    route,
    service,
    with_containers,
    with_spec,
    with_traffic,
)

CRD_NAMES = [
    "services.serving.knative.dev",
    "configurations.serving.knative.dev",
    "revisions.serving.knative.dev",
    "routes.serving.knative.dev",
    "podautoscalers.autoscaling.internal.knative.dev",
]


@pytest.fixture(scope="module")
def crds(cluster: Any) -> Iterator[Any]:
    # The session's cluster is shared: an admission webhook another module registered would
    # answer here too (and refuse fields config-features disables), so none is registered.
    cluster.kubectl("delete", "validatingwebhookconfiguration/validation.webhook.serving.knative.dev",
                    "mutatingwebhookconfiguration/webhook.serving.knative.dev", "--ignore-not-found")
    cluster.kubectl("apply", "-f", str(RESOURCES))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in CRD_NAMES])
    yield cluster


def apply(cluster: Any, namespace: str, doc: dict[str, Any] | str) -> Any:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=False)


def without_namespace(doc: dict[str, Any]) -> dict[str, Any]:
    """As a user writes it, for the test's namespace."""
    written = as_written(doc)
    written["metadata"].pop("namespace", None)
    return written


def assert_keeps(stored: Any, written: Any, path: str = "spec") -> None:
    """Everything the user wrote is stored as written (the defaulting webhook, when it runs,
    may add fields such as timeoutSeconds; it must never change or drop the user's)."""
    if isinstance(written, dict):
        assert isinstance(stored, dict), f"{path}: stored {stored!r}"
        for key, value in written.items():
            assert key in stored, f"{path}.{key} was dropped"
            assert_keeps(stored[key], value, f"{path}.{key}")
    elif isinstance(written, list):
        assert isinstance(stored, list) and len(stored) == len(written), f"{path}: stored {stored!r}"
        for index, (kept, value) in enumerate(zip(stored, written)):
            assert_keeps(kept, value, f"{path}[{index}]")
    else:
        assert stored == written, f"{path}: stored {stored!r}, written {written!r}"


def test_hello_world_applies_unchanged(crds: Any, namespace: str) -> None:
    result = apply(crds, namespace, HELLO_WORLD_YAML)
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load(crds.kubectl("get", "ksvc", "hello", "-n", namespace, "-o", "yaml").stdout)
    assert_keeps(stored["spec"], yaml.safe_load(HELLO_WORLD_YAML)["spec"])
    listing = crds.kubectl("get", "ksvc", "-n", namespace).stdout
    assert listing.split("\n")[0].split() == ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(
            service("s1", with_traffic({"latestRevision": True, "percent": 50}, {"revisionName": "s1-00001", "percent": 40})),
            "Traffic targets sum to 90, want 100: spec.traffic",
            id="percents sum to 90",
        ),
        pytest.param(
            service("s2", with_traffic({"latestRevision": True, "percent": 50, "tag": "x"},
                                       {"revisionName": "s2-00001", "percent": 50, "tag": "x"})),
            'Multiple definitions for "x": spec.traffic[0].tag, spec.traffic[1].tag',
            id="duplicate tag",
        ),
        pytest.param(
            route("r1", with_traffic({"revisionName": "a", "configurationName": "b", "percent": 100})),
            "expected exactly one, got both: spec.traffic[0].configurationName, spec.traffic[0].revisionName",
            id="revisionName and configurationName",
        ),
        pytest.param(
            service("s3", with_spec(timeoutSeconds=601)),
            "expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds",
            id="timeoutSeconds 601",
        ),
        pytest.param(
            service("s4", with_containers(container(ports=[{"containerPort": 8012}]))),
            "invalid value: 8012 is a reserved port: spec.template.spec.containers[0].ports.containerPort",
            id="reserved port",
        ),
        pytest.param(
            service("s5", with_containers(container(env=[{"name": "K_SERVICE", "value": "x"}]))),
            '"K_SERVICE" is a reserved environment variable: spec.template.spec.containers[0].env[0].name',
            id="reserved env",
        ),
        pytest.param(
            service("s6", with_traffic({"revisionName": "r", "latestRevision": True, "percent": 100})),
            'may not set revisionName "r" when latestRevision is true: spec.traffic[0].latestRevision',
            id="latestRevision with revisionName",
        ),
        pytest.param(
            service("s7", with_spec(containerConcurrency=1001)),
            "expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency",
            id="containerConcurrency 1001",
        ),
        pytest.param(
            service("s8", with_containers(container(ports=[{"containerPort": 8080}, {"containerPort": 8081}]))),
            "more than one container port is set: spec.template.spec.containers[*].ports",
            id="two ports",
        ),
    ],
)
def test_bad_input_is_refused_by_the_api_server(crds: Any, namespace: str, doc: dict[str, Any], message: str) -> None:
    result = apply(crds, namespace, without_namespace(doc))
    assert result.returncode != 0
    assert message in result.stderr


def test_revision_spec_is_immutable(crds: Any, namespace: str) -> None:
    created = apply(crds, namespace, without_namespace(revision()))
    assert created.returncode == 0, created.stderr
    edited = apply(crds, namespace, without_namespace(revision("hello-00001", with_spec(timeoutSeconds=10))))
    assert edited.returncode != 0
    assert "Immutable fields changed (-old +new): spec" in edited.stderr
    # metadata and status stay writable
    labelled = crds.kubectl("label", "-n", namespace, "revision", "hello-00001", "serving.knative.dev/routingState=active")
    assert labelled.returncode == 0
    patched = crds.kubectl("patch", "-n", namespace, "revision", "hello-00001", "--subresource=status", "--type=merge",
                           "-p", '{"status":{"actualReplicas":1}}')
    assert patched.returncode == 0


def test_byo_name_rules(crds: Any, namespace: str) -> None:
    bad = service("byo")
    bad["spec"]["template"]["metadata"] = {"name": "other-v1"}
    refused = apply(crds, namespace, without_namespace(bad))
    assert 'invalid value: "other-v1" must have prefix "byo-": spec.template.metadata.name' in refused.stderr
    good = service("byo")
    good["spec"]["template"]["metadata"] = {"name": "byo-v1"}
    assert apply(crds, namespace, without_namespace(good)).returncode == 0
    good["spec"]["template"]["spec"]["timeoutSeconds"] = 10
    refused = apply(crds, namespace, without_namespace(good))
    assert "Saw the following changes without a name change (-old +new): spec.template.metadata.name" in refused.stderr
    good["spec"]["template"]["metadata"]["name"] = "byo-v2"
    assert apply(crds, namespace, without_namespace(good)).returncode == 0


def test_full_knative_service_applies(crds: Any, namespace: str) -> None:
    doc = yaml.safe_load(FULL_SERVICE)
    result = apply(crds, namespace, doc)
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load(crds.kubectl("get", "ksvc", "full", "-n", namespace, "-o", "yaml").stdout)
    assert_keeps(stored["spec"], doc["spec"])


def test_kubectl_explain(crds: Any) -> None:
    explained = crds.kubectl("explain", "ksvc.spec.traffic.percent").stdout
    assert "all targets sum to 100" in explained


FULL_SERVICE = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: full
  annotations:
    serving.knative.dev/rollout-duration: "60s"
  labels:
    networking.knative.dev/visibility: cluster-local
spec:
  template:
    metadata:
      name: full-v1
      annotations:
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "10"
        autoscaling.knative.dev/target: "50"
        autoscaling.knative.dev/metric: "rps"
        autoscaling.knative.dev/window: "120s"
      labels: {app: full}
    spec:
      serviceAccountName: default
      containerConcurrency: 10
      timeoutSeconds: 120
      responseStartTimeoutSeconds: 60
      idleTimeoutSeconds: 30
      enableServiceLinks: false
      imagePullSecrets: [{name: regcred}]
      securityContext: {runAsNonRoot: true, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
      nodeSelector: {disk: ssd}
      tolerations: [{key: k, operator: Exists, effect: NoSchedule}]
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{matchExpressions: [{key: a, operator: In, values: [b]}]}]
      containers:
        - name: app
          image: ghcr.io/knative/helloworld-go@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          imagePullPolicy: IfNotPresent
          command: ["/ko-app/helloworld"]
          args: ["--flag"]
          workingDir: /tmp
          ports:
            - name: h2c
              containerPort: 8080
              protocol: TCP
          env:
            - name: TARGET
              value: "World"
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
            - name: CPU
              valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
            - name: SECRET
              valueFrom: {secretKeyRef: {name: s, key: k, optional: true}}
            - name: CM
              valueFrom: {configMapKeyRef: {name: c, key: k}}
          envFrom:
            - configMapRef: {name: c}
              prefix: C_
            - secretRef: {name: s}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 1Gi, nvidia.com/gpu: 1}
          readinessProbe:
            httpGet: {path: /healthz, port: 8080, httpHeaders: [{name: X, value: "yes"}]}
            initialDelaySeconds: 1
            periodSeconds: 5
            timeoutSeconds: 2
            successThreshold: 1
            failureThreshold: 3
          livenessProbe:
            tcpSocket: {port: 8080}
          startupProbe:
            exec: {command: [cat, /tmp/ready]}
            failureThreshold: 30
          volumeMounts:
            - {name: cfg, mountPath: /etc/cfg, readOnly: true}
            - {name: scratch, mountPath: /scratch}
            - {name: proj, mountPath: /etc/proj, readOnly: true}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsUser: 1000
            capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
          terminationMessagePolicy: FallbackToLogsOnError
        - name: sidecar
          image: busybox
          env: [{name: PORT, value: "9999"}]
      volumes:
        - name: cfg
          configMap: {name: c, items: [{key: a, path: b}]}
        - name: scratch
          emptyDir: {medium: Memory, sizeLimit: 64Mi}
        - name: proj
          projected:
            sources:
              - serviceAccountToken: {path: token, expirationSeconds: 3600, audience: x}
              - secret: {name: s}
              - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  traffic:
    - {latestRevision: true, percent: 90}
    - {revisionName: full-v1, percent: 10, tag: canary}
"""
