"""Each handler style's reading of a request and of a return value, as tables."""

from __future__ import annotations

import base64
import json

import pytest

from functions import styles
from functions.styles import HandlerError, HttpRequest, HttpResponse

JSON = (("Content-Type", "application/json"),)
TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


def request(method: str = "POST", target: str = "/", body: bytes = b"", **headers: str) -> HttpRequest:
    fields = tuple((k.replace("_", "-"), v) for k, v in headers.items())
    return HttpRequest.from_target(method, target, headers=fields, body=body, client="10.244.0.9")


@pytest.mark.parametrize(("given", "want"), [
    pytest.param(
        request("POST", "/tax?region=eu&x=1&x=2", b'{"subtotal": 100}', Host="tax.example.com", User_Agent="curl/8"),
        {
            "version": "2.0", "routeKey": "$default", "rawPath": "/tax", "rawQueryString": "region=eu&x=1&x=2",
            "headers": {"host": "tax.example.com", "user-agent": "curl/8"},
            "queryStringParameters": {"region": "eu", "x": "1,2"},
            "requestContext": {
                "accountId": "anonymous", "domainName": "tax.example.com",
                "http": {"method": "POST", "path": "/tax", "protocol": "HTTP/1.1", "sourceIp": "10.244.0.9",
                         "userAgent": "curl/8"},
                "requestId": "r-1", "routeKey": "$default", "stage": "$default", "timeEpoch": 1700000000000,
            },
            "body": '{"subtotal": 100}', "isBase64Encoded": False,
        },
        id="json-body-and-repeated-query",
    ),
    pytest.param(
        request("PUT", "/", b"\xff\x00", Cookie="a=1; b=2"),
        {
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "", "headers": {},
            "cookies": ["a=1", "b=2"],
            "requestContext": {
                "accountId": "anonymous", "domainName": "",
                "http": {"method": "PUT", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "10.244.0.9",
                         "userAgent": ""},
                "requestId": "r-1", "routeKey": "$default", "stage": "$default", "timeEpoch": 1700000000000,
            },
            "body": base64.b64encode(b"\xff\x00").decode(), "isBase64Encoded": True,
        },
        id="binary-body-is-base64-and-cookies-apart",
    ),
])
def test_lambda_event(given, want):
    assert styles.lambda_event(given, request_id="r-1", now_ms=1700000000000) == want


@pytest.mark.parametrize(("result", "want"), [
    pytest.param({"statusCode": 201, "headers": {"X-A": "1"}, "body": "made"},
                 HttpResponse(201, b"made", (("X-A", "1"), ("Content-Type", "application/json"))), id="status-map"),
    pytest.param({"statusCode": 200, "body": base64.b64encode(b"\x01").decode(), "isBase64Encoded": True,
                  "headers": {"content-type": "application/octet-stream"}},
                 HttpResponse(200, b"\x01", (("content-type", "application/octet-stream"),)), id="base64-body"),
    pytest.param({"statusCode": 302, "cookies": ["s=1"]},
                 HttpResponse(302, b"", (("Set-Cookie", "s=1"), ("Content-Type", "application/json"))),
                 id="cookies-no-body"),
    pytest.param({"tax": 4.7}, HttpResponse(200, b'{"tax":4.7}', JSON), id="any-json-object"),
    pytest.param([1, 2], HttpResponse(200, b"[1,2]", JSON), id="json-list"),
    pytest.param("plain words", HttpResponse(200, b"plain words", JSON), id="string-as-is"),
])
def test_lambda_response(result, want):
    assert styles.lambda_response(result) == want


def test_lambda_bad_status_is_a_handler_error():
    with pytest.raises(HandlerError, match="statusCode"):
        styles.lambda_response({"statusCode": "ok"})


def test_lambda_context_counts_down_from_the_timeout():
    now = [1000]
    context = styles.LambdaContext(function_name="tax", aws_request_id="r", deadline_ms=4000, clock_ms=lambda: now[0])
    assert context.get_remaining_time_in_millis() == 3000
    now[0] = 5000
    assert context.get_remaining_time_in_millis() == 0


@pytest.mark.parametrize(("result", "want"), [
    pytest.param("hello", HttpResponse(200, b"hello", TEXT), id="text"),
    pytest.param(None, HttpResponse(200, b"", TEXT), id="none"),
    pytest.param(42, HttpResponse(200, b"42", TEXT), id="number-as-text"),
    pytest.param(b"\x00", HttpResponse(200, b"\x00", (("Content-Type", "application/octet-stream"),)), id="bytes"),
])
def test_openfaas_response(result, want):
    assert styles.openfaas_response(result) == want


def test_openfaas_argument_is_the_body_as_text():
    assert styles.openfaas_argument(request(body="héllo".encode())) == "héllo"


def test_openfaas_http_event():
    event = styles.openfaas_http_event(request("PATCH", "/a/b?q=1&q=2&r=", b"{}", content_type="application/json"))
    assert event == styles.OpenFaasEvent(body=b"{}", headers={"Content-Type": "application/json"}, method="PATCH",
                                         query={"q": "1", "r": ""}, path="/a/b")


@pytest.mark.parametrize(("result", "want"), [
    pytest.param({"statusCode": 200, "body": {"tax": 4.7}}, HttpResponse(200, b'{"tax": 4.7}', JSON), id="dict-body"),
    pytest.param({"statusCode": 404, "body": "no", "headers": {"X-B": "2"}},
                 HttpResponse(404, b"no", (("X-B", "2"), ("Content-Type", "text/plain; charset=utf-8"))),
                 id="text-body-headers"),
    pytest.param({"body": "fine"}, HttpResponse(200, b"fine", TEXT), id="status-defaults-to-200"),
])
def test_openfaas_http_response(result, want):
    assert styles.openfaas_http_response(result) == want


def test_openfaas_http_needs_a_dict():
    with pytest.raises(HandlerError, match="dict with statusCode"):
        styles.openfaas_http_response("just text")


@pytest.mark.parametrize(("given", "want"), [
    pytest.param(request(body=b'{"subtotal": 100}'), {"subtotal": 100}, id="json-body"),
    pytest.param(request(body=b"[1, 2]"), [1, 2], id="json-list"),
    pytest.param(request("GET", "/?subtotal=100&x=1&x=2"), {"subtotal": "100", "x": "2"}, id="query-when-no-body"),
    pytest.param(request("GET", "/"), {}, id="nothing"),
])
def test_plain_argument(given, want):
    assert styles.plain_argument(given) == want


def test_plain_argument_refuses_a_body_that_is_not_json():
    with pytest.raises(styles.BadInput, match="not JSON"):
        styles.plain_argument(request(body=b"subtotal=100"))


def test_plain_response_and_what_json_cannot_hold():
    assert styles.plain_response({"tax": 4.7}) == HttpResponse(200, b'{"tax":4.7}', JSON)
    with pytest.raises(HandlerError, match="JSON cannot hold"):
        styles.plain_response({1, 2})


def test_error_response_is_short_json():
    response = styles.error_response(500, "ValueError: no")
    assert response.status == 500 and json.loads(response.body) == {"error": "ValueError: no"}
