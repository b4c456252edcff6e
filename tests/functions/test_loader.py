"""Loading a handler directory and calling it in each style, without a socket."""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from functions import templates
from functions.loader import LoadError, detect_style, load_function
from functions.styles import HttpRequest


@pytest.fixture
def directory(tmp_path):
    yield tmp_path
    for name in [n for n, m in sys.modules.items() if (getattr(m, "__file__", "") or "").startswith(str(tmp_path))]:
        del sys.modules[name]
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def write(directory, source: str, name: str = "handler.py") -> None:
    (directory / name).write_text(source)


def post(body: dict | None = None, target: str = "/") -> HttpRequest:
    return HttpRequest.from_target("POST", target, body=json.dumps(body).encode() if body is not None else b"")


@pytest.mark.parametrize("template", sorted(templates.HANDLERS))
def test_every_template_loads_in_its_style_and_greets(directory, template):
    write(directory, templates.HANDLERS[template])
    function = load_function(directory, target=templates.TARGETS[template], name="hi")
    assert function.style == templates.TEMPLATE_STYLES[template]
    response = function.call(post({"name": "Ada"}))
    assert response.status == 200, response
    assert json.loads(response.body)["message"] == "Hello, Ada!"


@pytest.mark.parametrize(("source", "want"), [
    pytest.param("def handler(event, context): pass", "lambda", id="handler-is-lambda"),
    pytest.param("def handle(req): pass", "openfaas", id="handle-one-is-openfaas"),
    pytest.param("def handle(event, context): pass", "openfaas-http", id="handle-two-is-openfaas-http"),
    pytest.param("def main(data): pass", "plain", id="main-is-plain"),
    pytest.param("def app(environ, start_response): pass", "wsgi", id="app-is-wsgi"),
    pytest.param("async def app(scope, receive, send): pass", "asgi", id="async-app-is-asgi"),
])
def test_style_is_detected_when_func_yaml_names_none(directory, source, want):
    write(directory, source)
    assert load_function(directory).style == want


def test_detect_style_reads_an_asgi_object_by_its_call():
    class App:
        async def __call__(self, scope, receive, send): ...

    assert detect_style("app", App()) == "asgi"


def test_an_async_main_is_awaited(directory):
    write(directory, "import asyncio\nasync def main(data):\n    await asyncio.sleep(0)\n    return data['x'] * 2\n")
    assert load_function(directory).call(post({"x": 21})).body == b"42"


def test_a_handler_that_raises_answers_500_with_a_short_json_error(directory, capfd):
    write(directory, "def main(data):\n    raise ValueError('no tax here')\n")
    response = load_function(directory).call(post({}))
    assert response.status == 500
    assert json.loads(response.body) == {"error": "ValueError: no tax here"}
    assert "Traceback" in capfd.readouterr().err  # the traceback is in the log, not the answer
    assert b"Traceback" not in response.body


def test_a_body_that_is_not_json_gets_400(directory):
    write(directory, "def main(data):\n    return data\n")
    response = load_function(directory).call(HttpRequest.from_target("POST", "/", body=b"a=1"))
    assert response.status == 400 and "not JSON" in json.loads(response.body)["error"]


def test_a_syntax_error_says_what_and_where(directory):
    write(directory, "def main(data):\n    return {'a': 1\n")
    with pytest.raises(LoadError) as raised:
        load_function(directory)
    message = str(raised.value)
    assert "SyntaxError" in message and "handler.py, line 2" in message, message


def test_an_import_error_names_the_module_and_line(directory):
    module = f"missing_{uuid.uuid4().hex[:6]}"
    write(directory, f"import json\nimport {module}\n")
    with pytest.raises(LoadError, match=rf"No module named '{module}' \(handler.py, line 2\)"):
        load_function(directory)


def test_no_handler_file(directory):
    write(directory, "x = 1", name="other.py")
    with pytest.raises(LoadError, match="no handler: put it in handler.py"):
        load_function(directory)


def test_a_named_function_that_is_missing(directory):
    write(directory, "def main(data): pass\n")
    with pytest.raises(LoadError, match="has no compute to call"):
        load_function(directory, target="handler:compute")


def test_the_handler_imports_its_neighbours(directory):
    write(directory, "RATE = 0.047\n", name="rates.py")
    write(directory, "from rates import RATE\ndef main(data):\n    return {'tax': round(data['subtotal'] * RATE, 2)}\n")
    assert load_function(directory).call(post({"subtotal": 100})).body == b'{"tax":4.7}'


def test_lambda_context_carries_the_name_and_time_left(directory):
    write(directory, "def handler(event, context):\n"
                     "    return {'name': context.function_name, 'left': context.get_remaining_time_in_millis(),"
                     " 'id': context.aws_request_id, 'method': event['requestContext']['http']['method']}\n")
    response = load_function(directory, name="tax", timeout_seconds=30).call(post({}))
    answer = json.loads(response.body)
    assert answer["name"] == "tax" and answer["method"] == "POST"
    assert 29000 < answer["left"] <= 30000
    assert len(answer["id"]) == 36


def test_wsgi_app_sees_path_query_and_headers(directory):
    write(directory, "def app(environ, start_response):\n"
                     "    start_response('201 Created', [('X-Path', environ['PATH_INFO'])])\n"
                     "    return [environ['QUERY_STRING'].encode(), environ.get('HTTP_X_TOKEN', '').encode()]\n")
    response = load_function(directory).call(
        HttpRequest.from_target("GET", "/items/7?full=1", headers=(("X-Token", "t"),)))
    assert (response.status, response.body, response.header("X-Path")) == (201, b"full=1t", "/items/7")
