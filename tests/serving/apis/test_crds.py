"""The generated CRDs: in sync with the generator, and shaped as Knative's."""

from __future__ import annotations

from typing import Any

import pytest

from serving.apis import crds


def test_files_are_up_to_date() -> None:
    assert crds.main(["--check"]) == 0, "run `python -m serving.apis.crds` and commit config/300-resources"


def _rules(schema: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        found.extend(schema.get("x-kubernetes-validations", []))
        for value in schema.values():
            found.extend(_rules(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_rules(value))
    return found


@pytest.mark.parametrize(
    ("name", "kind", "short_names", "columns"),
    [
        pytest.param("service.yaml", "Service", ["kservice", "ksvc"],
                     ["URL", "LatestCreated", "LatestReady", "Ready", "Reason"], id="ksvc"),
        pytest.param("configuration.yaml", "Configuration", ["kcfg", "config", "cfg"],
                     ["LatestCreated", "LatestReady", "Ready", "Reason"], id="kcfg"),
        pytest.param("revision.yaml", "Revision", ["rev"],
                     ["Config Name", "Generation", "Ready", "Reason", "Actual Replicas", "Desired Replicas"], id="rev"),
        pytest.param("route.yaml", "Route", ["rt"], ["URL", "Ready", "Reason"], id="rt"),
        pytest.param("podautoscaler.yaml", "PodAutoscaler", ["kpa", "pa"],
                     ["DesiredScale", "ActualScale", "Ready", "Reason"], id="kpa"),
    ],
)
def test_names_and_columns(name: str, kind: str, short_names: list[str], columns: list[str]) -> None:
    crd = crds.all_crds()[name]
    spec = crd["spec"]
    assert spec["names"]["kind"] == kind
    assert spec["names"]["shortNames"] == short_names
    if kind != "PodAutoscaler":
        assert spec["names"]["categories"] == ["all", "knative", "serving"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    for rule in _rules(version["schema"]):
        assert "\n" not in rule.get("message", ""), "the API server refuses line breaks in messages"


def test_bounds_follow_the_generator_arguments() -> None:
    text = crds.render(crds.service_crd(max_timeout=900, max_concurrency=50))
    assert "<= 900: spec.template.spec.timeoutSeconds" in text
    assert "<= 50: spec.template.spec.containerConcurrency" in text
