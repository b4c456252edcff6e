"""Models round-trip Knative objects: ``model_dump(by_alias=True, exclude_none=True)`` gives back the input."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from serving.apis.autoscaling.v1alpha1 import PodAutoscaler
from serving.apis.meta import ApiObject
from serving.apis.v1 import Configuration, Revision, Route, Service

FULL_SERVICE = yaml.safe_load("""
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: full
  namespace: default
  uid: 1b2c
  generation: 3
  resourceVersion: "42"
  creationTimestamp: "2024-01-01T00:00:00Z"
  labels: {networking.knative.dev/visibility: cluster-local}
  annotations: {serving.knative.dev/rollout-duration: 60s}
  managedFields: [{manager: kubectl, operation: Apply}]
spec:
  template:
    metadata:
      name: full-v1
      annotations: {autoscaling.knative.dev/min-scale: "1"}
    spec:
      containerConcurrency: 10
      timeoutSeconds: 120
      hostIPC: false
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      affinity: {nodeAffinity: {x: [1, 2]}}
      containers:
        - name: app
          image: ghcr.io/knative/helloworld-go:latest
          ports: [{name: h2c, containerPort: 8080}]
          env:
            - {name: A, value: b}
            - name: IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
          resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: 100m, nvidia.com/gpu: 1}}
          readinessProbe: {httpGet: {port: 8080, path: /}, periodSeconds: 0}
          livenessProbe: {tcpSocket: {port: http}}
          volumeMounts: [{name: v, mountPath: /v, readOnly: true}]
          securityContext: {capabilities: {drop: [ALL]}}
          futureField: {anything: [1, "two"]}
      volumes:
        - name: v
          projected: {sources: [{serviceAccountToken: {path: t, expirationSeconds: 600}}]}
  traffic:
    - {latestRevision: true, percent: 90}
    - {revisionName: full-v1, percent: 10, tag: canary}
status:
  observedGeneration: 3
  url: http://full.default.svc.cluster.local
  address: {url: http://full.default.svc.cluster.local}
  latestReadyRevisionName: full-v1
  latestCreatedRevisionName: full-v1
  traffic:
    - {revisionName: full-v1, percent: 100, latestRevision: true, url: http://x}
  conditions:
    - {type: ConfigurationsReady, status: "True", lastTransitionTime: "2024-01-01T00:00:00Z"}
    - {type: Ready, status: "True", lastTransitionTime: "2024-01-01T00:00:00Z"}
    - {type: RoutesReady, status: "True", lastTransitionTime: "2024-01-01T00:00:00Z"}
""")

REVISION = yaml.safe_load("""
apiVersion: serving.knative.dev/v1
kind: Revision
metadata:
  name: hello-00001
  labels: {serving.knative.dev/configuration: hello}
  ownerReferences:
    - {apiVersion: serving.knative.dev/v1, kind: Configuration, name: hello, uid: u1, controller: true, blockOwnerDeletion: true}
spec:
  containerConcurrency: 0
  timeoutSeconds: 300
  enableServiceLinks: false
  containers:
    - {name: user-container, image: x, readinessProbe: {successThreshold: 1, tcpSocket: {port: 0}}, resources: {}}
status:
  actualReplicas: 0
  desiredReplicas: 0
  logUrl: http://logs
  containerStatuses: [{name: user-container, imageDigest: "x@sha256:abc"}]
  conditions:
    - {type: Active, status: "False", reason: NoTraffic, severity: Info}
""")

ROUTE = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Route",
    "metadata": {"name": "r"},
    "spec": {"traffic": [{"configurationName": "c", "percent": 100}]},
    "status": {"address": {"url": "http://r.default.svc.cluster.local", "CACerts": "pem"}},
}

PA = {
    "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
    "kind": "PodAutoscaler",
    "metadata": {"name": "hello-00001"},
    "spec": {
        "containerConcurrency": 0,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello-00001-deployment"},
        "protocolType": "http1",
        "reachability": "Reachable",
    },
    "status": {"serviceName": "hello-00001", "metricsServiceName": "hello-00001-private", "desiredScale": 1, "actualScale": 1},
}


@pytest.mark.parametrize(
    ("model", "doc"),
    [
        pytest.param(Service, FULL_SERVICE, id="service with everything"),
        pytest.param(Revision, REVISION, id="revision"),
        pytest.param(Route, ROUTE, id="route"),
        pytest.param(PodAutoscaler, PA, id="podautoscaler"),
        pytest.param(Configuration, {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
                                     "metadata": {"name": "c"}, "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
                     id="configuration without template metadata"),
    ],
)
def test_round_trip(model: type[ApiObject], doc: dict[str, Any]) -> None:
    parsed = model.model_validate(doc)
    assert parsed.model_dump(by_alias=True, exclude_none=True) == doc
    assert parsed.to_dict() == doc


def test_snake_case_names_are_accepted_too() -> None:
    revision = Revision(spec={"container_concurrency": 3, "containers": [{"image": "x"}]})  # type: ignore[arg-type]
    assert revision.to_dict()["spec"] == {"containerConcurrency": 3, "containers": [{"image": "x"}]}


def test_unknown_container_fields_are_kept_and_visible() -> None:
    service = Service.model_validate(FULL_SERVICE)
    container = service.spec.template.spec.containers[0]  # type: ignore[index]
    assert container.model_extra == {"futureField": {"anything": [1, "two"]}}


def test_specs_are_frozen_and_status_is_not() -> None:
    service = Service.model_validate(FULL_SERVICE)
    with pytest.raises(Exception):
        service.spec.traffic = []
    service.status.url = "http://other"
    assert service.to_dict()["status"]["url"] == "http://other"


def test_helpers() -> None:
    service = Service.model_validate(FULL_SERVICE)
    assert service.key == "default/full"
    assert service.is_ready()
    assert service.spec.template.spec.get_container().name == "app"
    assert Revision.model_validate(REVISION).spec.get_container_concurrency() == 0
