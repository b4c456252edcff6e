"""Request header rewriting between the client and the app (DESIGN §4), on raw bytes.

Pure. One pass over the parsed header list classifies what the proxy needs to know
(probe, kubelet probe, activator-proxied, body framing, upgrade) and builds the headers
the app receives:

- ``Knative-Serving-Revision`` / ``-Namespace`` are dropped;
- ``Host`` is restored from ``K-Original-Host`` (which is dropped);
- ``Forwarded`` is synthesised from ``X-Forwarded-For/-Proto/-Host`` unless present;
- the client's address is appended to ``X-Forwarded-For``;
- hop-by-hop headers (``Connection`` and what it lists, ``Keep-Alive``, ``TE`` other
  than ``trailers``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``) are
  dropped, except what an Upgrade request needs; ``Expect: 100-continue`` is answered by
  the proxy itself, so it is dropped too.
"""

from __future__ import annotations

from typing import Final

BODY_NONE: Final = 0
BODY_LENGTH: Final = 1
BODY_CHUNKED: Final = 2

_KEEP: Final = 0
_DROP: Final = 1
_HOST: Final = 2
_ORIGINAL_HOST: Final = 3
_CONNECTION: Final = 4
_TRANSFER_ENCODING: Final = 5
_UPGRADE: Final = 6
_CONTENT_LENGTH: Final = 7
_EXPECT: Final = 8
_XFF: Final = 9
_XFP: Final = 10
_XFH: Final = 11
_FORWARDED: Final = 12
_PROBE: Final = 13
_USER_AGENT: Final = 14
_PROXY: Final = 15
_TE: Final = 16

_CLASSES: Final[dict[bytes, int]] = {
    b"host": _HOST,
    b"k-original-host": _ORIGINAL_HOST,
    b"knative-serving-revision": _DROP,
    b"knative-serving-namespace": _DROP,
    b"connection": _CONNECTION,
    b"keep-alive": _DROP,
    b"proxy-connection": _DROP,
    b"proxy-authenticate": _DROP,
    b"proxy-authorization": _DROP,
    b"te": _TE,
    b"trailer": _DROP,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"upgrade": _UPGRADE,
    b"content-length": _CONTENT_LENGTH,
    b"expect": _EXPECT,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-host": _XFH,
    b"forwarded": _FORWARDED,
    b"k-network-probe": _PROBE,
    b"user-agent": _USER_AGENT,
    b"k-proxy-request": _PROXY,
}
KUBE_PROBE_PREFIX: Final = b"kube-probe/"
ACTIVATOR: Final = b"activator"


class RequestHead:
    """What the proxy learnt from a request's headers, and the headers the app gets."""

    __slots__ = ("headers", "probe", "kubelet_probe", "proxied", "body", "expect_continue", "upgrade", "host",
                 "keep_alive_token", "close_token")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.probe: bytes | None = None
        self.kubelet_probe = False
        self.proxied = False
        self.body = BODY_NONE
        self.expect_continue = False
        self.upgrade: bytes | None = None  # the Upgrade header's value when the client asked to switch
        self.host: bytes | None = None
        self.keep_alive_token = False
        self.close_token = False


def rewrite_request_headers(raw_headers: list[tuple[bytes, bytes]], *, client_ip: bytes) -> RequestHead:
    result = RequestHead()
    out = result.headers
    classes = _CLASSES
    original_host: bytes | None = None
    host_index = -1
    xff: list[bytes] | None = None
    xfp = xfh = b""
    has_forwarded = False
    connection_tokens: list[bytes] | None = None
    connection_upgrade = False
    upgrade_value: bytes | None = None
    for name, value in raw_headers:
        kind = classes.get(name.lower(), _KEEP)
        if kind == _KEEP:
            out.append((name, value))
        elif kind == _HOST:
            host_index = len(out)
            result.host = value
            out.append((name, value))
        elif kind == _USER_AGENT:
            if value.startswith(KUBE_PROBE_PREFIX):
                result.kubelet_probe = True
            out.append((name, value))
        elif kind == _CONTENT_LENGTH:
            if value.strip() not in (b"0", b""):
                result.body = BODY_LENGTH
            out.append((name, value))
        elif kind == _DROP:
            continue
        elif kind == _ORIGINAL_HOST:
            original_host = value
        elif kind == _CONNECTION:
            for token in value.lower().split(b","):
                token = token.strip()
                if token == b"close":
                    result.close_token = True
                elif token == b"keep-alive":
                    result.keep_alive_token = True
                elif token == b"upgrade":
                    connection_upgrade = True
                elif token:
                    connection_tokens = (connection_tokens or []) + [token]
        elif kind == _TRANSFER_ENCODING:
            if b"chunked" in value.lower():
                result.body = BODY_CHUNKED
        elif kind == _UPGRADE:
            upgrade_value = value
        elif kind == _EXPECT:
            if value.strip().lower() == b"100-continue":
                result.expect_continue = True
            else:
                out.append((name, value))
        elif kind == _XFF:
            xff = (xff or []) + [value]
            out.append((name, value))
        elif kind == _XFP:
            xfp = value
            out.append((name, value))
        elif kind == _XFH:
            xfh = value
            out.append((name, value))
        elif kind == _FORWARDED:
            has_forwarded = True
            out.append((name, value))
        elif kind == _PROBE:
            result.probe = value.strip()
        elif kind == _PROXY:
            if value.strip().lower() == ACTIVATOR:
                result.proxied = True
            out.append((name, value))
        elif kind == _TE:
            if value.strip().lower() == b"trailers":
                out.append((name, value))
    if connection_upgrade and upgrade_value:
        result.upgrade = upgrade_value  # Upgrade without "Connection: upgrade" is no switch request
    if result.body == BODY_CHUNKED:
        out[:] = [(name, value) for name, value in out if name.lower() != b"content-length"]
    if connection_tokens:
        listed = set(connection_tokens)
        out[:] = [(name, value) for name, value in out if name.lower() not in listed]
    if original_host is not None:
        result.host = original_host
        if host_index >= 0:
            out[host_index] = (b"Host", original_host)
        else:
            out.append((b"Host", original_host))
    if not has_forwarded and (xff or xfp or xfh):
        out.append((b"Forwarded", forwarded_from_x_forwarded(b", ".join(xff) if xff else b"", xfp, xfh)))
    if xff:
        joined = b", ".join(xff) + b", " + client_ip
        out[:] = [(name, value) for name, value in out if name.lower() != b"x-forwarded-for"]
        out.append((b"X-Forwarded-For", joined))
    else:
        out.append((b"X-Forwarded-For", client_ip))
    return result


def forwarded_from_x_forwarded(xff: bytes, proto: bytes, host: bytes) -> bytes:
    """RFC 7239 ``Forwarded`` from the de-facto headers, as Knative's ForwardedShimHandler builds it."""
    elements = [b"for=" + _node(part.strip()) for part in xff.split(b",") if part.strip()]
    extra = []
    if host:
        extra.append(b"host=" + _quote_if_needed(host.strip()))
    if proto:
        extra.append(b"proto=" + _quote_if_needed(proto.strip()))
    if extra:
        if elements:
            elements[-1] = b";".join([elements[-1], *extra])
        else:
            elements.append(b";".join(extra))
    return b", ".join(elements)


def _node(address: bytes) -> bytes:
    if b":" in address and not address.startswith(b"["):  # IPv6 literals are bracketed and quoted
        return b'"[' + address + b']"'
    return _quote_if_needed(address)


def _quote_if_needed(value: bytes) -> bytes:
    if value and all(48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c in b"!#$%&'*+-.^_`|~" for c in value):
        return value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def encode_request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], *,
                        http10: bool = False, extra: bytes = b"") -> bytes:
    """The HTTP/1.x request head for the app: request line, headers, blank line."""
    parts = [method, b" ", target, b" HTTP/1.0\r\n" if http10 else b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(extra)
    parts.append(b"\r\n")
    return b"".join(parts)
