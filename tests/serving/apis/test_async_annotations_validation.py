"""The webhook refuses a Service whose call-queue annotations (knserve.dev/async*) do not parse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.serving.apis.test_validation import check_service
from tests.support.factories import service


def annotated(annotations: dict[str, str]) -> dict[str, Any]:
    doc = service("hello")
    doc["metadata"].setdefault("annotations", {}).update(annotations)
    return doc


@pytest.mark.parametrize(("annotations", "want"), [
    pytest.param({"knserve.dev/async": "always", "knserve.dev/async-max-attempts": "5",
                  "knserve.dev/async-min-backoff": "100ms"}, "", id="good values pass"),
    pytest.param({"knserve.dev/async-max-attempts": "0", "knserve.dev/async-max-age": "soon"},
                 "expected 1 <= 0 <= 100: metadata.annotations.knserve.dev/async-max-attempts\n"
                 "invalid value: 'soon' is not a duration (write it like 500ms, 10s, 5m or 6h): "
                 "metadata.annotations.knserve.dev/async-max-age", id="every bad value, with its path"),
    pytest.param({"knserve.dev/async": "sometimes"},
                 "invalid value: 'sometimes', expected 'always' or 'requested': metadata.annotations.knserve.dev/async",
                 id="mode"),
])
def test_async_annotations(annotations: dict[str, str], want: str) -> None:
    assert check_service(annotated(annotations)) == want
