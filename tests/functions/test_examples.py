"""examples/functions: get_tax and post_message answer the same in every style (the runtime's
loader, a real webhook receiver on loopback for post_message)."""

from __future__ import annotations

import http.server
import json
import sys
import threading
from pathlib import Path

import pytest
import yaml

from functions.loader import load_function
from functions.manifests import read_spec
from functions.styles import STYLES, HttpRequest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "functions"


@pytest.fixture(autouse=True)
def fresh_handler_module():
    yield
    sys.modules.pop("handler", None)
    for path in [p for p in sys.path if p.startswith(str(EXAMPLES))]:
        sys.path.remove(path)


def load(example: str, style: str):
    directory = EXAMPLES / example / style
    spec = read_spec(yaml.safe_load((directory / "func.yaml").read_text()), default_name=style)
    assert spec.style == style
    return load_function(directory, target=spec.handler, style=spec.style, name=spec.name), spec


@pytest.mark.parametrize("style", STYLES)
def test_get_tax(style):
    function, spec = load("get_tax", style)
    assert spec.name == f"get-tax-{style}"
    response = function.call(HttpRequest.from_target("POST", "/", body=b'{"subtotal": 100}'))
    assert response.status == 200 and json.loads(response.body) == {"tax": 4.7}


@pytest.fixture
def webhook(monkeypatch):
    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/messages")
    yield received
    server.shutdown()


@pytest.mark.parametrize("style", STYLES)
def test_post_message(style, webhook):
    function, spec = load("post_message", style)
    assert "WEBHOOK_URL" in spec.env
    body = json.dumps({"title": "Order 7", "txt": f"shipped ({style})"}).encode()
    response = function.call(HttpRequest.from_target("POST", "/", body=body))
    assert response.status == 200, response
    assert json.loads(response.body) == {"posted": True, "webhookStatus": 201}
    assert webhook == [{"title": "Order 7", "txt": f"shipped ({style})"}]
