"""FieldError renders like knative.dev/pkg apis.FieldError; names and Go formatting helpers."""

from __future__ import annotations

import pytest

from serving.apis.field_error import (
    Errors,
    FieldError,
    err_missing_field,
    err_multiple_one_of,
    err_out_of_bounds_value,
    flatten,
)
from serving.apis.names import child_name, is_dns1123_label, is_qualified_name, revision_name
from serving.config.parsers import format_duration


def test_paths_merge_and_sort() -> None:
    error = Errors(
        err_missing_field("b").via_field("spec"),
        err_missing_field("a").via_field("spec"),
        err_multiple_one_of("x", "y").via_index(0).via_field("traffic"),
    )
    assert str(error) == "expected exactly one, got both: traffic[0].x, traffic[0].y\nmissing field(s): spec.a, spec.b"


def test_flatten() -> None:
    assert flatten(["spec", "traffic", "[0]", "", "tag"]) == "spec.traffic[0].tag"
    assert flatten(["metadata.annotations", "autoscaling.knative.dev/min-scale"]) == (
        "metadata.annotations.autoscaling.knative.dev/min-scale")


def test_details_and_warnings() -> None:
    error = FieldError("bad", ("x",), "because").also(FieldError("careful", ("y",), level="Warning"))
    assert str(error.filter("Error")) == "bad: x\nbecause"
    assert str(error.filter("Warning")) == "careful: y"
    assert FieldError().filter("Error") is None
    assert err_out_of_bounds_value(1.5, 1, 1.0, "v").message == "expected 1 <= 1.5 <= 1"


@pytest.mark.parametrize(("seconds", "want"), [(0, "0s"), (6, "6s"), (3600, "1h0m0s"), (90, "1m30s"), (0.5, "500ms")])
def test_format_duration(seconds: float, want: str) -> None:
    assert format_duration(seconds) == want


def test_names() -> None:
    assert is_dns1123_label("ok-1") == []
    assert is_qualified_name("example.com/x") == []
    assert revision_name("hello", 1) == "hello-00001"
    long = "a" * 70
    assert len(child_name(long, "-00001")) == 63 and child_name(long, "-00001").endswith("-00001")
