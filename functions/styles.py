"""Handler styles: how one HTTP request becomes a handler's arguments, and its return value an answer.

Each style is a pair of pure functions, request -> arguments and return value -> answer, so
they are table-tested without a socket:

- ``lambda``: ``handler(event, context)``; the event is a Lambda function URL's (payload 2.0:
  ``rawPath``, ``headers``, ``queryStringParameters``, ``requestContext.http``, ``body``,
  ``isBase64Encoded``); the return value is read as Lambda reads it (a dict with
  ``statusCode``, else any JSON as a 200 ``application/json`` body).
- ``openfaas``: OpenFaaS's ``python3`` template, ``handle(req)`` with the body as text,
  returning text.
- ``openfaas-http``: OpenFaaS's ``python3-http`` template, ``handle(event, context)`` with
  ``event.body/headers/method/query/path``, returning ``{"statusCode", "body", "headers"}``.
- ``plain``: ``main(data)``, the JSON body (or the query's fields when there is no body) in,
  the return value out as JSON.

WSGI and ASGI apps are served by ``functions.apps``. Pure; no I/O.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

STYLES: Final = ("lambda", "openfaas", "openfaas-http", "plain", "wsgi", "asgi")
JSON_TYPE: Final = "application/json"
TEXT_TYPE: Final = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str  # without the query
    query: str = ""  # raw, without '?'
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client: str = ""

    @classmethod
    def from_target(cls, method: str, target: str, *, headers: tuple[tuple[str, str], ...] = (),
                    body: bytes = b"", client: str = "") -> HttpRequest:
        path, _, query = target.partition("?")
        return cls(method=method, path=path or "/", query=query, headers=headers, body=body, client=client)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


class HandlerError(Exception):
    """The handler returned something its style cannot turn into an answer; a sentence."""


def json_response(document: Any, *, status: int = 200) -> HttpResponse:
    body = json.dumps(document, separators=(",", ":")).encode()
    return HttpResponse(status, body, (("Content-Type", JSON_TYPE),))


def error_response(status: int, message: str) -> HttpResponse:
    """The short JSON error every style answers with (``{"error": ...}``)."""
    return json_response({"error": message}, status=status)


def _body_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _joined_headers(request: HttpRequest) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in request.headers:
        name = key.lower()
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _query_fields(query: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(query, keep_blank_values=True)


# --- Lambda -------------------------------------------------------------------------------------
@dataclass(slots=True)
class LambdaContext:
    """What Lambda's Python runtime passes as ``context`` (the names Lambda code reads)."""

    function_name: str
    aws_request_id: str
    deadline_ms: int
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    log_group_name: str = ""
    log_stream_name: str = ""
    invoked_function_arn: str = ""
    clock_ms: Any = field(default=lambda: int(time.time() * 1000), repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(self.clock_ms()))


def lambda_event(request: HttpRequest, *, request_id: str, now_ms: int) -> dict[str, Any]:
    """The function URL event (payload format 2.0) for ``request``."""
    headers = _joined_headers(request)
    text = _body_text(request.body)
    encoded = text is None
    query = {name: ",".join(values) for name, values in _query_fields(request.query).items()}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "domainName": headers.get("host", ""),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.client,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": now_ms,
        },
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if request.body:
        event["body"] = base64.b64encode(request.body).decode() if encoded else text
    return event


def lambda_response(result: Any) -> HttpResponse:
    """Lambda's reading of a function URL handler's return value."""
    if isinstance(result, Mapping) and "statusCode" in result:
        status = result["statusCode"]
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise HandlerError(f"statusCode must be an HTTP status number, not {status!r}.")
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        body = result.get("body")
        if body is None:
            raw = b""
        elif result.get("isBase64Encoded"):
            raw = base64.b64decode(str(body))
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", JSON_TYPE))
        return HttpResponse(status, raw, tuple(headers))
    if isinstance(result, str):
        return HttpResponse(200, result.encode(), (("Content-Type", JSON_TYPE),))
    return json_response(result)


# --- OpenFaaS python3 ---------------------------------------------------------------------------
def openfaas_argument(request: HttpRequest) -> str:
    return request.body.decode("utf-8", errors="replace")


def openfaas_response(result: Any) -> HttpResponse:
    if result is None:
        return HttpResponse(200, b"", (("Content-Type", TEXT_TYPE),))
    if isinstance(result, bytes):
        return HttpResponse(200, result, (("Content-Type", "application/octet-stream"),))
    return HttpResponse(200, str(result).encode(), (("Content-Type", TEXT_TYPE),))


# --- OpenFaaS python3-http ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenFaasEvent:
    """The ``event`` of OpenFaaS's python3-http template."""

    body: bytes
    headers: dict[str, str]
    method: str
    query: dict[str, str]
    path: str


@dataclass(frozen=True, slots=True)
class OpenFaasContext:
    hostname: str


def openfaas_http_event(request: HttpRequest) -> OpenFaasEvent:
    headers = {key.title(): value for key, value in request.headers}
    query = {name: values[0] for name, values in _query_fields(request.query).items()}
    return OpenFaasEvent(body=request.body, headers=headers, method=request.method, query=query, path=request.path)


def openfaas_http_response(result: Any) -> HttpResponse:
    if not isinstance(result, Mapping):
        raise HandlerError(f"handle must return a dict with statusCode and body, not {type(result).__name__}.")
    status = result.get("statusCode", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise HandlerError(f"statusCode must be an HTTP status number, not {status!r}.")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    body = result.get("body")
    if isinstance(body, (dict, list)):
        raw = json.dumps(body).encode()
        content_type = JSON_TYPE
    elif isinstance(body, bytes):
        raw, content_type = body, "application/octet-stream"
    else:
        raw, content_type = ("" if body is None else str(body)).encode(), TEXT_TYPE
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", content_type))
    return HttpResponse(status, raw, tuple(headers))


# --- plain --------------------------------------------------------------------------------------
class BadInput(Exception):
    """The request cannot be read as the handler's input; answered 400 with this sentence."""


def plain_argument(request: HttpRequest) -> Any:
    """The JSON body; with no body, the query's fields (one value each) as an object."""
    if request.body.strip():
        try:
            return json.loads(request.body)
        except ValueError as error:
            raise BadInput(f"The request body is not JSON ({error}).") from None
    return {name: values[-1] for name, values in _query_fields(request.query).items()}


def plain_response(result: Any) -> HttpResponse:
    try:
        return json_response(result)
    except (TypeError, ValueError) as error:
        raise HandlerError(f"main returned a value JSON cannot hold ({error}).") from None
