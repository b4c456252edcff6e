"""The function sample's loading and argument rules, without a server."""

from __future__ import annotations

import pytest

from samples.function import FunctionError, arguments, call, convert, load_function
from tests.samples.conftest import REPO_ROOT


def get_tax(subtotal: float) -> dict[str, float]:
    return {"tax": subtotal * 0.047}


def greet(name: str, *, excited: bool = False, times: int = 1) -> str:
    return ("Hello " + name + ("!" if excited else ".")) * times


def test_loads_a_module_by_name_or_by_path() -> None:
    by_name = load_function("tests.samples.test_function:get_tax")
    by_path = load_function(f"{REPO_ROOT / 'examples' / 'function' / 'tax.py'}:get_tax")

    assert by_name(subtotal=100) == {"tax": pytest.approx(4.7)}
    assert by_path(subtotal=100) == {"tax": pytest.approx(4.7)}


def test_loads_source_code_given_in_a_variable() -> None:
    function = load_function("double", code="def double(n: int) -> int:\n    return 2 * n\n")

    assert function(n=21) == 42


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("get_tax", "The target 'get_tax' must name a module and a function", id="no-module"),
        pytest.param("no_such_module_here:f", "There is no module no_such_module_here in ", id="unknown-module"),
        pytest.param("missing/file.py:f", "There is no file missing/file.py", id="unknown-file"),
        pytest.param("tests.samples.test_function:nothing", "tests.samples.test_function has no function", id="no-function"),
    ],
)
def test_load_errors_are_sentences(target: str, message: str) -> None:
    with pytest.raises(FunctionError) as caught:
        load_function(target)
    assert str(caught.value).startswith(message)


def test_query_values_take_the_annotated_type_and_the_body_wins() -> None:
    found = arguments(
        greet,
        query={"name": ["query"], "excited": ["true"], "times": ["2"]},
        body=b'{"name": "body"}',
        content_type="application/json",
    )

    assert found == {"name": "body", "excited": True, "times": 2}
    assert call(greet, found) == "Hello body!Hello body!"


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        pytest.param({}, b"", "The arguments do not fit get_tax: missing a required argument: 'subtotal'.", id="missing"),
        pytest.param(
            {"subtotal": ["1"], "extra": ["2"]}, b"",
            "The arguments do not fit get_tax: got an unexpected keyword argument 'extra'.", id="unexpected",
        ),
        pytest.param({"subtotal": ["ten"]}, b"", "The parameter subtotal: 'ten' is not a valid float.", id="bad-number"),
        pytest.param({}, b"[1]", "The request body must be a JSON object whose fields are the arguments.", id="not-an-object"),
        pytest.param({}, b"{nope", "The request body is not valid JSON: ", id="not-json"),
    ],
)
def test_bad_arguments_are_explained(query: dict[str, list[str]], body: bytes, message: str) -> None:
    with pytest.raises(FunctionError) as caught:
        arguments(get_tax, query=query, body=body, content_type="application/json")
    assert str(caught.value).startswith(message)


def test_form_fields_count_like_query_parameters_and_json_is_json_whatever_the_type() -> None:
    form = "application/x-www-form-urlencoded"

    assert arguments(get_tax, query={}, body=b"subtotal=100", content_type=form) == {"subtotal": 100.0}
    assert arguments(get_tax, query={}, body=b'{"subtotal": 100}', content_type=form) == {"subtotal": 100}


def test_unannotated_query_values_stay_text_and_json_annotations_parse() -> None:
    def take(a, b: list[int]):  # type: ignore[no-untyped-def]
        return a, b

    assert arguments(take, query={"a": ["1"], "b": ["[1, 2]"]}, body=b"", content_type="") == {"a": "1", "b": [1, 2]}
    assert convert("x", str) == "x"


def test_coroutine_functions_are_awaited() -> None:
    async def later(n: int) -> int:
        return n + 1

    assert call(later, {"n": 1}) == 2
