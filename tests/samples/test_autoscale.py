"""The autoscale sample's work functions, without a server."""

from __future__ import annotations

import pytest

from samples.autoscale import BadParameter, bloat, largest_prime_below, parse_work, prime, sleep


@pytest.mark.parametrize(
    ("limit", "want"),
    [
        pytest.param(0, None, id="zero"),
        pytest.param(2, None, id="nothing-below-two"),
        pytest.param(3, 2, id="three"),
        pytest.param(10, 7, id="ten"),
        pytest.param(11, 7, id="a-prime-itself-is-not-below"),
        pytest.param(12, 11, id="twelve"),
        pytest.param(10000, 9973, id="the-docs-example"),
        pytest.param(1_000_000, 999983, id="a-million"),
    ],
)
def test_largest_prime_below(limit: int, want: int | None) -> None:
    assert largest_prime_below(limit) == want


def test_messages_read_like_the_original() -> None:
    assert prime(10000) == "The largest prime less than 10000 is 9973.\n"
    assert prime(2) == "There are no primes smaller than 2.\n"
    assert bloat(3) == "Allocated 3 Mb of memory.\n"
    assert sleep(1).startswith("Slept for ") and sleep(1).endswith(" milliseconds.\n")


def test_parse_work_skips_missing_and_zero_values() -> None:
    work = parse_work({"sleep": ["0"], "prime": ["100"], "other": ["x"]})

    assert [(function.__name__, amount) for function, amount in work] == [("prime", 100)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"sleep": ["abc"]}, "The sleep parameter must be an integer, not 'abc'.\n", id="not-a-number"),
        pytest.param({"bloat": ["-1"]}, "The bloat parameter must not be negative, got -1.\n", id="negative"),
    ],
)
def test_parse_work_rejects_bad_values(query: dict[str, list[str]], message: str) -> None:
    with pytest.raises(BadParameter) as caught:
        parse_work(query)
    assert str(caught.value) == message
