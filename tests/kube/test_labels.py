import pytest

from kube.labels import parse_selector, selector_from_labels


@pytest.mark.parametrize(
    ("selector", "labels", "want"),
    [
        pytest.param("", {}, True, id="empty selects all"),
        pytest.param("app=a", {"app": "a"}, True, id="equal"),
        pytest.param("app==a", {"app": "b"}, False, id="double equal mismatch"),
        pytest.param("app!=a", {}, True, id="not equal on missing"),
        pytest.param("app", {"app": ""}, True, id="exists"),
        pytest.param("!app", {"app": "x"}, False, id="not exists"),
        pytest.param("env in (a, b),app", {"env": "b", "app": "x"}, True, id="set in"),
        pytest.param("env notin (a,b)", {"env": "a"}, False, id="set notin"),
    ],
)
def test_selector_matches(selector: str, labels: dict[str, str], want: bool) -> None:
    assert parse_selector(selector).matches(labels) is want


def test_selector_round_trips_to_string() -> None:
    assert str(selector_from_labels({"b": "2", "a": "1"})) == "a=1,b=2"
    assert str(parse_selector("x in (b,a),!y")) == "x in (a,b),!y"
