"""Which endpoints of a Service's EndpointSlices take traffic, including through a hand-over."""

from __future__ import annotations

from typing import Any

import pytest

from kube.endpoints import handover_endpoints_at


def endpoint(address: str, *, ready: bool | None = True, serving: bool | None = None,
             terminating: bool | None = None) -> dict[str, Any]:
    conditions = {key: value for key, value in (("ready", ready), ("serving", serving), ("terminating", terminating))
                  if value is not None}
    return {"addresses": [address], "conditions": conditions}


def slice_of(*endpoints: dict[str, Any], port: int = 8012) -> dict[str, Any]:
    return {"ports": [{"name": "http", "port": port}], "endpoints": list(endpoints)}


OLD_DRAINING = endpoint("10.244.0.5", ready=False, serving=True, terminating=True)
OLD_STOPPED = endpoint("10.244.0.5", ready=False, serving=False, terminating=True)
NEW_STARTING = endpoint("10.244.0.9", ready=False, serving=False, terminating=False)
NEW_READY = endpoint("10.244.0.9", ready=True, serving=True, terminating=False)


@pytest.mark.parametrize(("slices", "want"), [
    pytest.param([slice_of(NEW_READY)], (("10.244.0.9", 8012),), id="ready"),
    pytest.param([slice_of(endpoint("10.244.0.9", ready=None))], (("10.244.0.9", 8012),), id="ready-unset-counts"),
    pytest.param([slice_of(OLD_DRAINING, NEW_STARTING)], (("10.244.0.5", 8012),),
                 id="draining-kept-while-its-replacement-starts"),
    pytest.param([slice_of(OLD_DRAINING, NEW_READY)], (("10.244.0.9", 8012),), id="replacement-ready-takes-over"),
    pytest.param([slice_of(OLD_DRAINING), slice_of(NEW_READY, port=9000)], (("10.244.0.9", 9000),),
                 id="ready-in-another-slice-takes-over"),
    pytest.param([slice_of(OLD_STOPPED, NEW_STARTING)], (), id="terminating-and-no-longer-serving-dropped"),
    pytest.param([slice_of(endpoint("10.244.0.5", ready=False))], (), id="not-ready-not-terminating-dropped"),
    pytest.param([{"ports": [{"name": "metrics", "port": 9090}], "endpoints": [OLD_DRAINING]}], (),
                 id="other-port-name"),
])
def test_handover_endpoints(slices: list[dict[str, Any]], want: tuple[tuple[str, int], ...]) -> None:
    assert handover_endpoints_at(slices, "http") == want
