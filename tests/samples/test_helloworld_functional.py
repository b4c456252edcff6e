"""The hello world sample as a real process: the greeting, TARGET, its log, SIGTERM."""

from __future__ import annotations

import http.client

from tests.samples.client import request


def test_answers_hello_world_by_default(start_sample) -> None:
    sample = start_sample("samples.helloworld")

    answer = request(sample.url + "/")

    assert (answer.status, answer.text) == (200, "Hello World!\n")
    assert answer.headers["Content-Type"].startswith("text/plain")


def test_greets_the_target_on_any_path_and_method(start_sample) -> None:
    sample = start_sample("samples.helloworld", env={"TARGET": "Knative"})

    assert request(sample.url + "/").text == "Hello Knative!\n"
    assert request(sample.url + "/some/path?x=1", method="POST", body=b"ignored").text == "Hello Knative!\n"


def test_logs_its_start_and_exits_cleanly_on_sigterm(start_sample) -> None:
    sample = start_sample("samples.helloworld")
    assert request(sample.url + "/").status == 200

    assert sample.stop() == 0
    assert sample.log_lines[:2] == ["helloworld: starting server...", f"helloworld: listening on port {sample.port}"]


def test_keeps_the_connection_open_between_requests(start_sample) -> None:
    sample = start_sample("samples.helloworld")
    connection = http.client.HTTPConnection("127.0.0.1", sample.port, timeout=10)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/")
            response = connection.getresponse()
            assert response.read() == b"Hello World!\n"
            sockets.append(connection.sock)
        assert sockets[0] is not None and sockets == [sockets[0]] * 3
    finally:
        connection.close()
