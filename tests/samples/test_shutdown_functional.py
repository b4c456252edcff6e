"""The sample servers on SIGTERM: they stop accepting, answer what is in flight, then exit 0."""

from __future__ import annotations

import concurrent.futures
import socket
import time

import pytest

from tests.samples.client import Answer, request

IN_FLIGHT = 4
SLOW_MS = 1500


@pytest.mark.parametrize("module", ["samples.runtime", "samples.autoscale"])
def test_sigterm_finishes_requests_in_flight_before_exiting(start_sample, module: str) -> None:
    sample = start_sample(module)
    url = sample.url + f"/?sleep={SLOW_MS}"
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending = [pool.submit(request, url) for _ in range(IN_FLIGHT)]
        time.sleep(0.5)  # every request has reached the app and sleeps there
        sample.process.terminate()
        exit_code = sample.process.wait(timeout=10)
        answers: list[Answer] = [future.result(timeout=10) for future in pending]

    assert [answer.status for answer in answers] == [200] * IN_FLIGHT
    assert all(answer.headers["Connection"] == "close" for answer in answers)
    assert exit_code == 0
    assert any(f"finished {IN_FLIGHT} requests in flight" in line for line in sample.log_lines), sample.log_lines
    with pytest.raises(OSError):  # no new connection once it stopped
        socket.create_connection(("127.0.0.1", sample.port), timeout=2).close()


def test_sigterm_with_nothing_in_flight_exits_at_once(start_sample) -> None:
    sample = start_sample("samples.helloworld")
    assert request(sample.url).status == 200  # a keep-alive connection that went idle does not hold it

    sample.process.terminate()

    assert sample.process.wait(timeout=10) == 0
    assert any("shutting down" in line for line in sample.log_lines)
    assert not any("requests in flight" in line for line in sample.log_lines)
