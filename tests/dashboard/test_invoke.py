from __future__ import annotations

import pytest

from dashboard.invoke import InvokeError, InvokeRequest, parse_invoke


@pytest.mark.parametrize("form, want", [
    pytest.param({"method": "post", "path": "/echo?x=1", "headers": "Content-Type: application/json\n\nX-A:  b ",
                  "body": '{"a": 1}'},
                 InvokeRequest("POST", "/echo?x=1", (("Content-Type", "application/json"), ("X-A", "b")), b'{"a": 1}'),
                 id="headers and body"),
    pytest.param({"method": "GET", "path": "", "async": "on", "headers": "Prefer: wait=5"},
                 InvokeRequest("GET", "/", (("Prefer", "respond-async"),), b""), id="async replaces Prefer"),
])
def test_parse_invoke(form, want):
    assert parse_invoke(form) == want


@pytest.mark.parametrize("form, message", [
    pytest.param({"method": "BREW"}, "The method 'BREW' is not one of", id="method"),
    pytest.param({"path": "hello"}, "must start with /", id="path"),
    pytest.param({"headers": "no colon here"}, "Header line 1 ('no colon here') is not 'Name: value'", id="header"),
    pytest.param({"headers": "Host: other.example.com"}, "sets Host, which the dashboard sets itself", id="host"),
])
def test_parse_invoke_refuses_with_a_sentence(form, message):
    with pytest.raises(InvokeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_invoke(form)
