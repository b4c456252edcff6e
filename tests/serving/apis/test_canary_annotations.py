"""Canary annotations (knserve.dev/canary-*): parsed into a policy, and every bad one refused at
apply with the annotation's path and the form it accepts."""

from __future__ import annotations

from typing import Any

import pytest

from serving.apis.v1.service_canary import CanaryPolicy, parse_canary_policy
from tests.serving.apis.test_validation import check_service
from tests.support.factories import service


def annotated(annotations: dict[str, str]) -> dict[str, Any]:
    doc = service("hello")
    doc["metadata"].setdefault("annotations", {}).update(annotations)
    return doc


def test_no_steps_no_policy() -> None:
    assert parse_canary_policy({}) is None
    assert parse_canary_policy({"knserve.dev/canary-interval": "10s"}) is None


def test_defaults_and_every_knob() -> None:
    assert parse_canary_policy({"knserve.dev/canary-steps": "5,25,50"}) == CanaryPolicy(steps=(5, 25, 50))
    policy = parse_canary_policy({
        "knserve.dev/canary-steps": "10, 50", "knserve.dev/canary-interval": "1m",
        "knserve.dev/canary-max-error-rate": "0.5%", "knserve.dev/canary-max-latency-p99": "250ms",
        "knserve.dev/canary-min-requests": "20"})
    assert policy == CanaryPolicy(steps=(10, 50), interval=60.0, max_error_rate=0.005, max_latency_p99=0.25,
                                  min_requests=20)
    assert policy.wait_limit == 600.0


STEPS_FORM = ('expected shares in percent before 100, comma-separated and increasing, each 1..99, like "5,25,50": '
              "metadata.annotations.knserve.dev/canary-steps")


@pytest.mark.parametrize(("annotations", "want"), [
    pytest.param({"knserve.dev/canary-steps": "5,25,50", "knserve.dev/canary-interval": "30s"}, "",
                 id="good values pass"),
    pytest.param({"knserve.dev/canary-steps": "50,25"}, f"invalid value '50,25': {STEPS_FORM}", id="not increasing"),
    pytest.param({"knserve.dev/canary-steps": "5,100"}, f"invalid value '5,100': {STEPS_FORM}", id="100 is no step"),
    pytest.param({"knserve.dev/canary-steps": "five"}, f"invalid value 'five': {STEPS_FORM}", id="not numbers"),
    pytest.param({"knserve.dev/canary-steps": "5", "knserve.dev/canary-max-error-rate": "2",
                  "knserve.dev/canary-interval": "0.5s"},
                 "invalid value '0.5s': expected a duration between 1s and 1h, like \"500ms\", \"30s\" or \"2m\": "
                 "metadata.annotations.knserve.dev/canary-interval\n"
                 "invalid value '2': expected a percentage from 0% to 100%, like \"1%\" or \"0.5%\": "
                 "metadata.annotations.knserve.dev/canary-max-error-rate",
                 id="every bad value, with its path"),
    pytest.param({"knserve.dev/canary-min-requests": "-1"},
                 "invalid value '-1': expected a whole number of requests from 1 to 1000000: "
                 "metadata.annotations.knserve.dev/canary-min-requests", id="a bad knob without the switch"),
    pytest.param({"knserve.dev/canary-steps": "5", "knserve.dev/canary-max-latency-p99": "fast"},
                 "invalid value 'fast': expected a duration above 0, like \"500ms\", \"30s\" or \"2m\": "
                 "metadata.annotations.knserve.dev/canary-max-latency-p99", id="latency"),
])
def test_canary_annotations(annotations: dict[str, str], want: str) -> None:
    assert check_service(annotated(annotations)) == want
