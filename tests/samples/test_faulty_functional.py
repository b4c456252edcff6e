"""The faulty sample as a real process: its share of 500s and its delay."""

from __future__ import annotations

import time

import pytest

from samples.faulty import fails
from tests.samples.client import request


@pytest.mark.parametrize("percent", [0, 1, 20, 50, 100])
def test_fails_exactly_the_share_asked_for_in_every_hundred(percent: int) -> None:
    assert sum(fails(count, percent) for count in range(100)) == percent
    assert sum(fails(count, percent) for count in range(100, 300)) == 2 * percent


def test_answers_500_on_one_request_in_five_at_twenty_percent(start_sample) -> None:
    sample = start_sample("samples.faulty", env={"ERROR_PERCENT": "20", "TARGET": "v2"})

    answers = [request(sample.url + "/") for _ in range(50)]

    assert sorted({(a.status, a.text) for a in answers}) == [
        (200, "Hello v2!\n"), (500, "failing on purpose (ERROR_PERCENT)\n")]
    assert sum(a.status == 500 for a in answers) == 10


def test_waits_the_delay_before_answering(start_sample) -> None:
    sample = start_sample("samples.faulty", env={"DELAY_MS": "300"})
    request(sample.url + "/")  # the first connection's set-up is not the app's delay

    started = time.monotonic()
    answer = request(sample.url + "/")

    assert (answer.status, answer.text) == (200, "Hello World!\n")
    assert time.monotonic() - started >= 0.3
