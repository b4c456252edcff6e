"""The runtime sample as a real process: it shows the request and the contract's variables."""

from __future__ import annotations

import http.client
import json

from tests.samples.client import request
from tests.samples.conftest import launch

CONTRACT_ENV = {"K_SERVICE": "hello", "K_CONFIGURATION": "hello", "K_REVISION": "hello-00001"}


def test_echoes_method_path_query_headers_body_and_environment(start_sample) -> None:
    sample = start_sample("samples.runtime", env=CONTRACT_ENV)

    answer = request(
        sample.url + "/a/b?x=1&x=2", method="PUT", headers={"X-Custom": "yes", "Host": "hello.default.example.com"},
        body=b"payload",
    )

    assert answer.status == 200
    described = answer.json()
    assert described["method"] == "PUT"
    assert described["path"] == "/a/b"
    assert described["query"] == {"x": ["1", "2"]}
    assert described["headers"]["X-Custom"] == "yes"
    assert described["headers"]["Host"] == "hello.default.example.com"
    assert described["body"] == "payload"
    assert described["env"] == {**CONTRACT_ENV, "PORT": "0"}  # as the process was given it


def test_status_and_sleep_shape_the_answer(start_sample) -> None:
    sample = start_sample("samples.runtime")

    answer = request(sample.url + "/?status=503&sleep=10")

    assert answer.status == 503
    assert answer.json()["query"] == {"status": ["503"], "sleep": ["10"]}
    assert request(sample.url + "/?sleep=soon").status == 400


def test_stream_sends_the_first_line_at_once_then_ticks(start_sample) -> None:
    sample = start_sample("samples.runtime")
    connection = http.client.HTTPConnection("127.0.0.1", sample.port, timeout=10)
    try:
        connection.request("GET", "/?stream=0.3&interval=100")
        response = connection.getresponse()
        first = json.loads(response.readline())
        rest = [json.loads(line) for line in response.read().splitlines()]
    finally:
        connection.close()

    assert response.headers["Transfer-Encoding"] == "chunked"
    assert first["path"] == "/"
    assert rest and rest == [{"tick": n} for n in range(1, len(rest) + 1)]


def test_crash_set_exits_with_status_1_at_start() -> None:
    process = launch("samples.runtime", env={"CRASH": "1"})
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 1
    assert "CRASH is set" in stderr
