"""Defaults table tests: whole objects in, whole defaulted objects out."""

from __future__ import annotations

from typing import Any

import pytest

from serving.apis.v1 import Configuration, Revision, Route, Service
from serving.apis.v1.configuration_defaults import default_configuration
from serving.apis.v1.revision_defaults import default_revision
from serving.apis.v1.route_defaults import default_route
from serving.apis.v1.service_defaults import default_service
from serving.config import ConfigSnapshot
from tests.support.factories import (
    IMAGE,
    configuration,
    container,
    revision,
    route,
    service,
    with_containers,
    with_spec,
    with_template_name,
    with_traffic,
)

CONFIG = ConfigSnapshot()


def defaulted_user_container(**fields: Any) -> dict[str, Any]:
    return {
        "image": IMAGE,
        "name": "user-container",
        "readinessProbe": {"successThreshold": 1, "tcpSocket": {"port": 0}},
        "resources": {},
        **fields,
    }


def defaulted_spec(**fields: Any) -> dict[str, Any]:
    return {
        "containerConcurrency": 0,
        "containers": [defaulted_user_container()],
        "enableServiceLinks": False,
        "timeoutSeconds": 300,
        **fields,
    }


HELLO_WORLD = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "hello"},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "image": IMAGE,
                        "ports": [{"containerPort": 8080}],
                        "env": [{"name": "TARGET", "value": "World"}],
                    }
                ]
            }
        }
    },
}


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        pytest.param(
            HELLO_WORLD,
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": "hello"},
                "spec": {
                    "template": {
                        "spec": defaulted_spec(containers=[defaulted_user_container(
                            ports=[{"containerPort": 8080}], env=[{"name": "TARGET", "value": "World"}])]),
                    },
                    "traffic": [{"latestRevision": True, "percent": 100}],
                },
            },
            id="hello world",
        ),
        pytest.param(
            service("hello", with_traffic({"revisionName": "hello-00001", "percent": 90}, {"percent": 10, "tag": "next"})),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec()},
                    "traffic": [
                        {"revisionName": "hello-00001", "percent": 90, "latestRevision": False},
                        {"percent": 10, "tag": "next", "latestRevision": True},
                    ],
                },
            },
            id="latestRevision follows revisionName",
        ),
        pytest.param(
            service("hello", with_traffic({"tag": "x", "revisionName": "r"})),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec()},
                    "traffic": [{"tag": "x", "revisionName": "r", "latestRevision": False, "percent": 0}],
                },
            },
            id="percent defaults to 0",
        ),
        pytest.param(
            service("hello", with_spec(timeoutSeconds=0, containerConcurrency=10)),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec(timeoutSeconds=300, containerConcurrency=10)},
                    "traffic": [{"latestRevision": True, "percent": 100}],
                },
            },
            id="timeoutSeconds 0 means the default",
        ),
        pytest.param(
            service("hello", with_spec(timeoutSeconds=600)),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec(timeoutSeconds=600, responseStartTimeoutSeconds=300)},
                    "traffic": [{"latestRevision": True, "percent": 100}],
                },
            },
            id="response start timeout when below a long timeout",
        ),
        pytest.param(
            service("hello", with_containers(
                container(ports=[{"containerPort": 8888}]),
                container(),
                container(name="user-container-0"),
            )),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec(containers=[
                        defaulted_user_container(name="user-container-1", ports=[{"containerPort": 8888}],
                                                 readinessProbe={"successThreshold": 1, "tcpSocket": {"port": 0}}),
                        {"image": IMAGE, "name": "user-container-2", "resources": {}},
                        {"image": IMAGE, "name": "user-container-0", "resources": {}},
                    ])},
                    "traffic": [{"latestRevision": True, "percent": 100}],
                },
            },
            id="multi-container names skip taken ones; only the serving container gets a probe",
        ),
        pytest.param(
            service("hello", with_containers(container(
                readinessProbe={"httpGet": {"path": "/ready"}, "periodSeconds": 2},
                volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}, {"name": "tmp", "mountPath": "/tmp"}],
            )), with_spec(volumes=[{"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp", "emptyDir": {}}])),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec(
                        containers=[defaulted_user_container(
                            readinessProbe={"httpGet": {"path": "/ready"}, "periodSeconds": 2, "successThreshold": 1,
                                            "failureThreshold": 3, "timeoutSeconds": 1},
                            volumeMounts=[{"name": "cfg", "mountPath": "/cfg", "readOnly": True},
                                          {"name": "tmp", "mountPath": "/tmp"}],
                        )],
                        volumes=[{"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp", "emptyDir": {}}],
                    )},
                    "traffic": [{"latestRevision": True, "percent": 100}],
                },
            },
            id="probe thresholds and read-only mounts",
        ),
        pytest.param(
            service("hello", with_spec(enableServiceLinks=True)),
            {
                **service(),
                "spec": {
                    "template": {"spec": defaulted_spec(enableServiceLinks=True)},
                    "traffic": [{"latestRevision": True, "percent": 100}],
                },
            },
            id="enableServiceLinks kept when set",
        ),
    ],
)
def test_default_service(doc: dict[str, Any], want: dict[str, Any]) -> None:
    assert default_service(Service.model_validate(doc), CONFIG).to_dict() == want


def test_default_service_from_config() -> None:
    config = ConfigSnapshot.from_configmaps({
        "config-defaults": {
            "revision-timeout-seconds": "100",
            "container-concurrency": "5",
            "revision-cpu-request": "100m",
            "revision-memory-limit": "1Gi",
            "revision-idle-timeout-seconds": "30",
            "container-name-template": "{{.Name}}-app",
            "enable-service-links": "default",
        }
    })
    got = default_service(Service.model_validate(service()), config).to_dict()
    assert got["spec"]["template"]["spec"] == {
        "containerConcurrency": 5,
        "timeoutSeconds": 100,
        "idleTimeoutSeconds": 30,
        "containers": [{
            "image": IMAGE,
            "name": "hello-app",
            "readinessProbe": {"successThreshold": 1, "tcpSocket": {"port": 0}},
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
        }],
    }


def test_update_with_unchanged_byo_name_leaves_the_template_alone() -> None:
    old = Service.model_validate(service("hello", with_template_name("hello-v1")))
    new = Service.model_validate(service("hello", with_template_name("hello-v1"), with_spec(timeoutSeconds=10)))
    got = default_service(new, CONFIG, old=old)
    assert got.spec.template == new.spec.template
    assert got.to_dict()["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_update_does_not_default_enable_service_links() -> None:
    old = Service.model_validate(service())
    got = default_service(Service.model_validate(service("hello", with_spec(timeoutSeconds=10))), CONFIG, old=old)
    assert "enableServiceLinks" not in got.to_dict()["spec"]["template"]["spec"]


def test_default_configuration_and_route() -> None:
    got = default_configuration(Configuration.model_validate(configuration()), CONFIG).to_dict()
    assert got["spec"]["template"]["spec"] == defaulted_spec()
    # a standalone Route gets no traffic defaults beyond latestRevision/percent
    assert default_route(Route.model_validate(route("hello", with_traffic())), CONFIG).to_dict()["spec"] == {"traffic": []}
    got_route = default_route(Route.model_validate(route("hello", with_traffic({"configurationName": "c", "percent": 100}))), CONFIG)
    assert got_route.to_dict()["spec"] == {"traffic": [{"configurationName": "c", "percent": 100, "latestRevision": True}]}


def test_default_revision_create_and_update() -> None:
    created = default_revision(Revision.model_validate(revision()), CONFIG).to_dict()
    assert created["spec"] == defaulted_spec()
    unchanged = Revision.model_validate(revision())
    assert default_revision(unchanged, CONFIG, old=unchanged).to_dict() == revision()


def test_defaults_do_not_change_the_input() -> None:
    doc = service()
    original = Service.model_validate(doc)
    default_service(original, CONFIG)
    assert original.to_dict() == doc
