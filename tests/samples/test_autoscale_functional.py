"""The autoscale sample as a real process: sleep, prime and bloat answers, concurrency."""

from __future__ import annotations

import http.client
import re

from tests.samples.client import request


def test_sleep_prime_and_bloat_answer_one_line_each(start_sample) -> None:
    sample = start_sample("samples.autoscale")

    answer = request(sample.url + "/?sleep=100&prime=10000&bloat=5")

    assert answer.status == 200
    lines = answer.text.splitlines()
    assert sorted(lines[:2]) == ["Allocated 5 Mb of memory.", "The largest prime less than 10000 is 9973."]
    slept = re.fullmatch(r"Slept for (\d+\.\d\d) milliseconds\.", lines[2])
    assert slept is not None and float(slept.group(1)) >= 100


def test_each_parameter_alone(start_sample) -> None:
    sample = start_sample("samples.autoscale")

    assert request(sample.url + "/?prime=100").text == "The largest prime less than 100 is 97.\n"
    assert request(sample.url + "/?bloat=1").text == "Allocated 1 Mb of memory.\n"
    assert request(sample.url + "/?sleep=1").text.startswith("Slept for ")
    assert request(sample.url + "/").text == ""


def test_a_bad_parameter_is_a_400(start_sample) -> None:
    sample = start_sample("samples.autoscale")

    answer = request(sample.url + "/?prime=lots")

    assert (answer.status, answer.text) == (400, "The prime parameter must be an integer, not 'lots'.\n")


def test_a_quick_request_is_answered_while_a_slow_one_runs(start_sample) -> None:
    sample = start_sample("samples.autoscale")
    slow = http.client.HTTPConnection("127.0.0.1", sample.port, timeout=60)
    slow.request("GET", "/?sleep=30000")  # connected and sent first; its answer is not read
    try:
        quick = request(sample.url + "/?prime=10", timeout=10)
    finally:
        slow.close()

    assert quick.text == "The largest prime less than 10 is 7.\n"
