"""Environment resolution and $(VAR) expansion, by Kubernetes' rules."""

from __future__ import annotations

import base64

import pytest

from node.envvars import (
    ContainerConfigError,
    expand,
    expand_command_line,
    referenced_objects,
    resolve_environment,
    secret_strings,
)

POD = {
    "metadata": {
        "name": "web-1", "namespace": "demo", "uid": "u-1",
        "labels": {"app": "web", "tier": "front"}, "annotations": {"note": 'say "hi"'},
    },
    "spec": {"nodeName": "knserve-node", "serviceAccountName": "runner"},
}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param("$(A)-$(B)", "1-two", id="two references"),
        pytest.param("$$(A)", "$(A)", id="escaped"),
        pytest.param("$(MISSING)", "$(MISSING)", id="unknown stays"),
        pytest.param("$(A", "$(A", id="unclosed stays"),
        pytest.param("a$b", "a$b", id="dollar before other char"),
        pytest.param("cost $", "cost $", id="trailing dollar"),
        pytest.param("$$$(A)", "$1", id="escape then reference"),
        pytest.param("", "", id="empty"),
    ],
)
def test_expand(text: str, want: str) -> None:
    assert expand(text, {"A": "1", "B": "two"}) == want


def resolve(container: dict, **kwargs: object) -> dict[str, str]:
    options: dict = {
        "pod_ip": "10.244.0.7", "host_ip": "10.244.0.1", "config_maps": {}, "secrets": {}, "node_variables": {},
    }
    options.update(kwargs)
    return resolve_environment(container, POD, **options)


@pytest.mark.parametrize(
    ("field_path", "want"),
    [
        pytest.param("metadata.name", "web-1", id="name"),
        pytest.param("metadata.namespace", "demo", id="namespace"),
        pytest.param("metadata.uid", "u-1", id="uid"),
        pytest.param("metadata.labels['app']", "web", id="one label"),
        pytest.param("metadata.labels", 'app="web"\ntier="front"', id="all labels"),
        pytest.param("metadata.annotations['note']", 'say "hi"', id="one annotation"),
        pytest.param("spec.nodeName", "knserve-node", id="node"),
        pytest.param("spec.serviceAccountName", "runner", id="service account"),
        pytest.param("status.podIP", "10.244.0.7", id="pod ip"),
        pytest.param("status.hostIP", "10.244.0.1", id="host ip"),
    ],
)
def test_field_references(field_path: str, want: str) -> None:
    container = {"env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": field_path}}}]}
    assert resolve(container)["V"] == want


def test_order_and_expansion_of_earlier_variables() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "base"}, "prefix": "CFG_"}],
        "env": [
            {"name": "GREETING", "value": "hello $(WHO) from $(CFG_CITY) on $(NODE_VAR)"},
            {"name": "WHO", "value": "late"},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "base", "key": "mode"}}},
        ],
    }
    env = resolve(
        container,
        config_maps={"base": {"CITY": "Oslo", "mode": "fast"}},
        secrets={"creds": {"password": "s3cret"}},
        node_variables={"NODE_VAR": "n"},
    )
    assert env == {
        "NODE_VAR": "n",
        "CFG_CITY": "Oslo",
        "CFG_mode": "fast",
        "GREETING": "hello $(WHO) from Oslo on n",  # WHO is defined later: left as written
        "WHO": "late",
        "PASSWORD": "s3cret",
        "MODE": "fast",
    }


@pytest.mark.parametrize(
    ("container", "message"),
    [
        pytest.param(
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]},
            'configmap "gone" not found',
            id="missing configmap",
        ),
        pytest.param(
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]},
            "couldn't find key nope in secret creds (needed by env var X)",
            id="missing secret key",
        ),
        pytest.param(
            {"envFrom": [{"secretRef": {"name": "gone"}}]},
            'secret "gone" not found',
            id="missing envFrom secret",
        ),
        pytest.param(
            {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.unknown"}}}]},
            'unsupported fieldRef fieldPath "spec.unknown"',
            id="unknown field",
        ),
    ],
)
def test_unresolvable_configuration_is_a_sentence(container: dict, message: str) -> None:
    with pytest.raises(ContainerConfigError) as raised:
        resolve(container, config_maps={"gone": None}, secrets={"creds": {"password": "x"}, "gone": None})
    assert str(raised.value) == message


def test_optional_references_are_skipped() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "gone", "optional": True}}],
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}}],
    }
    assert resolve(container, config_maps={"gone": None}, secrets={"gone": None}) == {}


def test_referenced_objects_and_secret_strings() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s1"}}],
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}],
    }
    references = referenced_objects(container)
    assert references.config_maps == {"a"}
    assert references.secrets == {"s1", "s2"}
    secret = {"data": {"k": base64.b64encode(b"v").decode()}, "stringData": {"plain": "p"}}
    assert secret_strings(secret) == {"k": "v", "plain": "p"}


def test_command_line_expansion() -> None:
    assert expand_command_line(["serve", "--port=$(PORT)", "$$(PORT)"], {"PORT": "9000"}) == [
        "serve", "--port=9000", "$(PORT)",
    ]
