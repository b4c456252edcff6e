import pytest

from kube.fields import FieldRequirement, FieldSelector, field_value, parse_field_selector

POD = {
    "metadata": {"name": "web", "namespace": "ns"},
    "spec": {"nodeName": "node-1", "hostNetwork": True},
    "status": {"phase": "Running"},
}
UNSCHEDULED = {"metadata": {"name": "new", "namespace": "ns"}, "spec": {}}


@pytest.mark.parametrize(("text", "want"), [
    pytest.param(None, FieldSelector(), id="none selects everything"),
    pytest.param("", FieldSelector(), id="empty selects everything"),
    pytest.param("spec.nodeName=node-1", FieldSelector((FieldRequirement("spec.nodeName", "node-1"),)), id="equals"),
    pytest.param("spec.nodeName==node-1", FieldSelector((FieldRequirement("spec.nodeName", "node-1"),)),
                 id="double equals"),
    pytest.param("spec.nodeName=", FieldSelector((FieldRequirement("spec.nodeName", ""),)), id="empty value"),
    pytest.param("metadata.namespace=ns, metadata.name!=x", FieldSelector((
        FieldRequirement("metadata.namespace", "ns"), FieldRequirement("metadata.name", "x", equal=False))),
        id="two terms"),
    pytest.param(r"metadata.name=a\,b\=c", FieldSelector((FieldRequirement("metadata.name", "a,b=c"),)),
                 id="escaped comma and equals"),
])
def test_parse(text: str | None, want: FieldSelector) -> None:
    assert parse_field_selector(text) == want


@pytest.mark.parametrize("text", ["spec.nodeName", "=x", "a=b,,c"])
def test_parse_refuses_terms_without_a_path_or_an_operator(text: str) -> None:
    with pytest.raises(ValueError, match="invalid field selector term"):
        parse_field_selector(text)


@pytest.mark.parametrize(("text", "obj", "want"), [
    pytest.param("spec.nodeName=node-1", POD, True, id="on the node"),
    pytest.param("spec.nodeName=node-2", POD, False, id="on another node"),
    pytest.param("spec.nodeName=", UNSCHEDULED, True, id="absent field is empty"),
    pytest.param("spec.nodeName=", POD, False, id="scheduled pod is not unscheduled"),
    pytest.param("spec.nodeName!=node-1", UNSCHEDULED, True, id="not equal"),
    pytest.param("metadata.namespace=ns,status.phase=Running", POD, True, id="all terms hold"),
    pytest.param("metadata.namespace=ns,status.phase=Pending", POD, False, id="one term fails"),
    pytest.param("spec.hostNetwork=true", POD, True, id="booleans as the API writes them"),
])
def test_matches(text: str, obj: dict, want: bool) -> None:
    assert parse_field_selector(text).matches(obj) is want


def test_field_value_of_a_path_through_a_non_object_is_empty() -> None:
    assert field_value(POD, "metadata.name.first") == ""
