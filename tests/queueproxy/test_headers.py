"""Request header rewriting, on bytes."""

from __future__ import annotations

import pytest

from queueproxy.headers import (
    F_ANY_PROBE,
    F_CHUNKED,
    F_EXPECT_CONTINUE,
    F_KUBELET_PROBE,
    F_LENGTH,
    F_PROBE,
    F_PROXIED,
    F_UPGRADE,
    RequestHead,
    RequestHeadBuilder,
    forwarded_from_x_forwarded,
)


def build(headers: list[tuple[bytes, bytes]], *, method: bytes = b"GET", http10: bool = False) -> RequestHead:
    builder = RequestHeadBuilder()
    for name, value in headers:
        builder.on_header(name, value)
    return builder.take_head(method, b"/path?q=1", http10=http10, client_ip=b"10.0.0.9")


def test_plain_request_gets_x_forwarded_for() -> None:
    head = build([(b"Host", b"example.com"), (b"Accept", b"*/*")])
    assert head.head == (b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                         b"X-Forwarded-For: 10.0.0.9\r\n\r\n")
    assert head.flags == 0 and head.probe is None and head.upgrade is None
    assert head.header_list() == [(b"Host", b"example.com"), (b"Accept", b"*/*"), (b"X-Forwarded-For", b"10.0.0.9")]


def test_knative_headers_dropped_and_host_restored() -> None:
    head = build([
        (b"Host", b"internal.svc"), (b"Knative-Serving-Revision", b"r-1"), (b"knative-serving-namespace", b"ns"),
        (b"K-Original-Host", b"hello.example.com"), (b"X-Forwarded-For", b"1.1.1.1, 2.2.2.2"),
        (b"X-Forwarded-Proto", b"https"), (b"K-Proxy-Request", b"activator"),
    ])
    assert dict(head.header_list()) == {
        b"X-Forwarded-Proto": b"https", b"K-Proxy-Request": b"activator", b"Host": b"hello.example.com",
        b"Forwarded": b"for=1.1.1.1, for=2.2.2.2;proto=https", b"X-Forwarded-For": b"1.1.1.1, 2.2.2.2, 10.0.0.9",
    }
    assert head.flags & F_PROXIED


def test_existing_forwarded_is_kept() -> None:
    head = build([(b"Forwarded", b"for=9.9.9.9"), (b"X-Forwarded-For", b"1.1.1.1")])
    assert [value for name, value in head.header_list() if name == b"Forwarded"] == [b"for=9.9.9.9"]


def test_hop_by_hop_headers_dropped() -> None:
    head = build([
        (b"Connection", b"keep-alive, X-Private"), (b"X-Private", b"secret"), (b"Keep-Alive", b"timeout=5"),
        (b"TE", b"gzip"), (b"Proxy-Authorization", b"x"), (b"Trailer", b"X"), (b"Accept", b"*/*"),
    ])
    assert head.header_list() == [(b"Accept", b"*/*"), (b"X-Forwarded-For", b"10.0.0.9")]


def test_te_trailers_is_kept_for_grpc() -> None:
    assert (b"TE", b"trailers") in build([(b"TE", b"trailers")]).header_list()


@pytest.mark.parametrize(
    ("headers", "flag"),
    [
        pytest.param([(b"K-Network-Probe", b"queue")], F_PROBE, id="network-probe"),
        pytest.param([(b"User-Agent", b"kube-probe/1.37")], F_KUBELET_PROBE, id="kubelet"),
        pytest.param([(b"Content-Length", b"10")], F_LENGTH, id="length"),
        pytest.param([(b"Transfer-Encoding", b"chunked")], F_CHUNKED, id="chunked"),
        pytest.param([(b"Expect", b"100-continue"), (b"Content-Length", b"3")], F_EXPECT_CONTINUE, id="expect"),
    ],
)
def test_flags(headers: list[tuple[bytes, bytes]], flag: int) -> None:
    assert build(headers).flags & flag


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(b"Knative-Serving-Revision", b"hello-00001"), (b"User-Agent", b"kube-probe/1.37")],
                     id="revision first"),
        pytest.param([(b"User-Agent", b"kube-probe/1.37"), (b"Knative-Serving-Revision", b"hello-00001")],
                     id="user agent first"),
    ],
)
def test_kubelet_user_agent_on_a_routed_request_is_no_probe(headers: list[tuple[bytes, bytes]]) -> None:
    head = build(headers)
    assert not head.flags & F_ANY_PROBE
    assert head.header_list()[0] == (b"User-Agent", b"kube-probe/1.37")  # the app sees it unchanged


def test_probe_value_kept_and_header_not_forwarded() -> None:
    head = build([(b"K-Network-Probe", b"queue")])
    assert head.probe == b"queue" and all(name != b"K-Network-Probe" for name, _ in head.header_list())


def test_chunked_request_is_sent_chunked_without_content_length() -> None:
    head = build([(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")], method=b"POST")
    assert head.flags & F_CHUNKED and not head.flags & F_LENGTH
    assert b"Content-Length" not in head.head and head.head.endswith(b"Transfer-Encoding: chunked\r\n\r\n")


def test_upgrade_request_keeps_connection_upgrade() -> None:
    head = build([(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WebSocket-Key", b"k")])
    assert head.flags & F_UPGRADE and head.upgrade == b"websocket"
    assert head.head.endswith(b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")


def test_upgrade_header_alone_is_not_a_switch() -> None:
    head = build([(b"Upgrade", b"websocket")])
    assert head.upgrade is None and b"Upgrade" not in head.head


def test_http10_keep_alive_is_passed_on() -> None:
    head = build([(b"Connection", b"keep-alive")], http10=True)
    assert head.head.startswith(b"GET /path?q=1 HTTP/1.0\r\n") and b"Connection: keep-alive\r\n" in head.head


def test_builder_resets_between_requests() -> None:
    builder = RequestHeadBuilder()
    builder.on_header(b"K-Original-Host", b"a")
    builder.take_head(b"GET", b"/", http10=False, client_ip=b"1")
    builder.on_header(b"Host", b"b")
    assert builder.take_head(b"GET", b"/", http10=False, client_ip=b"1").header_list()[0] == (b"Host", b"b")


@pytest.mark.parametrize(
    ("xff", "proto", "host", "want"),
    [
        pytest.param(b"1.2.3.4", b"", b"", b"for=1.2.3.4", id="for"),
        pytest.param(b"", b"https", b"a.example", b"host=a.example;proto=https", id="no-for"),
        pytest.param(b"::1, 5.6.7.8", b"http", b"", b'for="[::1]", for=5.6.7.8;proto=http', id="ipv6"),
        pytest.param(b"_hidden", b"", b"a b", b'for=_hidden;host="a b"', id="quoting"),
    ],
)
def test_forwarded_from_x_forwarded(xff: bytes, proto: bytes, host: bytes, want: bytes) -> None:
    assert forwarded_from_x_forwarded(xff, proto, host) == want


def test_the_ingress_token_never_reaches_the_app() -> None:
    head = build([(b"Host", b"hello.example.com"), (b"K-Network-Ingress-Token", b"secret"), (b"Accept", b"*/*")])
    assert b"secret" not in head.head
    assert b"k-network-ingress-token" not in head.head.lower()


def test_the_call_queues_dispatch_mark_never_reaches_the_app() -> None:
    head = build([(b"Host", b"hello.example.com"), (b"K-Call-Dispatch", b"secret"), (b"Accept", b"*/*")])
    assert b"secret" not in head.head
    assert b"k-call-dispatch" not in head.head.lower() and b"accept: */*" in head.head.lower()
