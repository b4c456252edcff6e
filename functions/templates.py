"""The starting files of ``knserve func new NAME --template T``: a handler, requirements.txt, func.yaml.

Each template's handler answers ``{"name": ...}`` with a greeting, in its style. Pure data.
"""

from __future__ import annotations

from typing import Final

TEMPLATE_STYLES: Final = {
    "lambda": "lambda", "openfaas": "openfaas", "openfaas-http": "openfaas-http", "plain": "plain",
    "wsgi": "wsgi", "asgi": "asgi",
}

HANDLERS: Final = {
    "lambda": '''import json


def handler(event, context):
    """A Lambda function URL handler: the HTTP event in, statusCode/headers/body out."""
    body = json.loads(event.get("body") or "{}")
    name = body.get("name") or (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": f"Hello, {name}!", "function": context.function_name}),
    }
''',
    "openfaas": '''import json


def handle(req):
    """OpenFaaS python3: the request body as text in, text out."""
    name = json.loads(req).get("name", "world") if req.strip() else "world"
    return json.dumps({"message": f"Hello, {name}!"})
''',
    "openfaas-http": '''import json


def handle(event, context):
    """OpenFaaS python3-http: event.body/headers/method/query/path in, statusCode/body/headers out."""
    body = json.loads(event.body or b"{}")
    name = body.get("name") or event.query.get("name", "world")
    return {"statusCode": 200, "body": {"message": f"Hello, {name}!"}, "headers": {}}
''',
    "plain": '''def main(data):
    """JSON in, JSON out."""
    name = (data or {}).get("name", "world")
    return {"message": f"Hello, {name}!"}
''',
    "wsgi": '''import json


def app(environ, start_response):
    """A WSGI app (a Flask app works the same: app = Flask(__name__))."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    answer = json.dumps({"message": f"Hello, {body.get('name', 'world')}!"}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]
''',
    "asgi": '''import json


async def app(scope, receive, send):
    """An ASGI app (a FastAPI or Starlette app works the same: app = FastAPI())."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = json.dumps({"message": f"Hello, {json.loads(body or b'{}').get('name', 'world')}!"}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})
''',
}

TARGETS: Final = {"lambda": "handler:handler", "openfaas": "handler:handle", "openfaas-http": "handler:handle",
                  "plain": "handler:main", "wsgi": "handler:app", "asgi": "handler:app"}


def func_yaml(name: str, template: str) -> str:
    return (
        f"# knserve function: `knserve func deploy` in this directory deploys it.\n"
        f"name: {name}\n"
        f"style: {TEMPLATE_STYLES[template]}\n"
        f"handler: {TARGETS[template]}\n"
        f"# env: {{GREETING: hello}}\n"
        f"# scale: {{min: 0, max: 10}}\n"
        f"# concurrency: 0        # requests a replica takes at once (0: no limit)\n"
        f"# timeout: 300          # seconds a request may take\n"
    )


REQUIREMENTS: Final = "# Packages from PyPI, installed once per distinct file and shared by every replica.\n"
