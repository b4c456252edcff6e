"""The function sample as a real process: the tax example through JSON and the query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.samples.client import request
from tests.samples.conftest import REPO_ROOT, launch

TAX_SOURCE = (REPO_ROOT / "examples" / "function" / "tax.py").read_text()


def test_tax_for_a_subtotal_of_100_is_4_7(start_sample) -> None:
    sample = start_sample("samples.function", "examples/function/tax.py:get_tax")

    by_body = request(
        sample.url + "/", method="POST", headers={"Content-Type": "application/json"}, body=b'{"subtotal": 100}'
    )
    by_query = request(sample.url + "/?subtotal=100")

    assert by_body.status == 200 and by_body.headers["Content-Type"] == "application/json"
    assert by_body.json() == {"tax": pytest.approx(4.7)}
    assert by_query.json() == {"tax": pytest.approx(4.7)}


def test_source_from_the_environment_as_a_configmap_would_give_it(start_sample) -> None:
    sample = start_sample("samples.function", env={"FUNCTION_TARGET": "tax:get_tax", "FUNCTION_CODE": TAX_SOURCE})

    assert request(sample.url + "/?subtotal=100").json() == {"tax": pytest.approx(4.7)}


def test_wrong_arguments_are_a_400_and_a_failing_function_a_500(start_sample, tmp_path: Path) -> None:
    source = tmp_path / "fragile.py"
    source.write_text("def divide(a: float, b: float) -> float:\n    return a / b\n")
    sample = start_sample("samples.function", f"{source}:divide")

    missing = request(sample.url + "/?a=1")
    failing = request(sample.url + "/?a=1&b=0")
    fine = request(sample.url + "/?a=1&b=4")

    assert missing.status == 400
    assert missing.json() == {"error": "The arguments do not fit divide: missing a required argument: 'b'."}
    assert failing.status == 500
    assert failing.json() == {"error": "divide failed: ZeroDivisionError: float division by zero"}
    assert json.loads(fine.body) == 0.25


def test_a_target_that_cannot_load_stops_the_process_with_a_reason() -> None:
    process = launch("samples.function", "no_such_module_here:f")
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 2
    assert "function: There is no module no_such_module_here" in stderr
