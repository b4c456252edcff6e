"""Request header rewriting between the client and the app (DESIGN §4), on raw bytes.

Pure. ``RequestHeadBuilder`` receives headers one by one as httptools parses them
(the client connection inherits it, so the parser calls ``on_header`` directly) and
builds the head the app receives while it notes what the proxy must know (probe,
kubelet probe, activator-proxied, body framing, upgrade). Ordinary headers cost one dict
lookup; the rewriting below touches only the headers it names:

- ``Knative-Serving-Revision`` / ``-Namespace`` are dropped; a request that carries the
  revision header came through the ingress (which always sets it, after removing what the
  client sent) or the activator (which keeps it), so its ``kube-probe/`` User-Agent is the
  client's own and does not make it a kubelet probe: only the kubelet's, sent straight to
  the pod, are answered as probes;
- ``Host`` is restored from ``K-Original-Host`` (which is dropped);
- ``Forwarded`` is synthesised from ``X-Forwarded-For/-Proto/-Host`` unless present;
- the client's address is appended to ``X-Forwarded-For``;
- hop-by-hop headers (``Connection`` and what it lists, ``Keep-Alive``, ``TE`` other
  than ``trailers``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``) are
  dropped, except what an Upgrade request needs; ``Expect: 100-continue`` is answered by
  the proxy itself, so it is dropped too.
"""

from __future__ import annotations

from typing import Any, Final

# request flags
F_KUBELET_PROBE: Final = 1
F_PROBE: Final = 2  # K-Network-Probe present (value in RequestHead.probe)
F_PROXIED: Final = 4  # K-Proxy-Request: activator
F_LENGTH: Final = 8  # a body with Content-Length
F_CHUNKED: Final = 16  # a chunked body
F_EXPECT_CONTINUE: Final = 32
F_CONNECTION_CLOSE: Final = 64
F_CONNECTION_KEEP_ALIVE: Final = 128
F_UPGRADE: Final = 256  # a protocol switch request (value in RequestHead.upgrade)
F_ROUTED: Final = 512  # Knative-Serving-Revision present: routed by the ingress, not sent by the kubelet
F_ANY_PROBE: Final = F_KUBELET_PROBE | F_PROBE
F_BODY: Final = F_LENGTH | F_CHUNKED

_DROP: Final = 1
_ORIGINAL_HOST: Final = 2
_CONNECTION: Final = 3
_TRANSFER_ENCODING: Final = 4
_UPGRADE: Final = 5
_CONTENT_LENGTH: Final = 6
_EXPECT: Final = 7
_XFF: Final = 8
_XFP: Final = 9
_XFH: Final = 10
_FORWARDED: Final = 11
_PROBE: Final = 12
_USER_AGENT: Final = 13
_PROXY: Final = 14
_TE: Final = 15
_ROUTED: Final = 16

_CLASSES: Final[dict[bytes, int]] = {
    b"k-original-host": _ORIGINAL_HOST,
    b"knative-serving-revision": _ROUTED,
    b"knative-serving-namespace": _DROP,
    b"k-network-ingress-token": _DROP,  # the ingress's proof to the activator: never the app's to see
    b"k-call-dispatch": _DROP,  # the call queue's mark (the ingress token); the ingress removes it first
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
_LINE_END_11: Final = b" HTTP/1.1\r\n"
_LINE_END_10: Final = b" HTTP/1.0\r\n"


class RequestHead:
    """A request's head as the app gets it, and what the proxy learnt from it."""

    __slots__ = ("head", "flags", "probe", "upgrade", "parts")

    def __init__(self, head: bytes, flags: int, probe: bytes | None, upgrade: bytes | None, parts: list[bytes]) -> None:
        self.head = head
        self.flags = flags
        self.probe = probe
        self.upgrade = upgrade
        # [request line, name, b": ", value, b"\r\n", name, ..., b"\r\n"]: for HTTP/2 to the app
        self.parts = parts

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """The rewritten headers as (name, value) pairs."""
        parts = self.parts
        return [(parts[index], parts[index + 2]) for index in range(1, len(parts) - 1, 4)]

    @property
    def proxied(self) -> bool:
        return bool(self.flags & F_PROXIED)


class RequestHeadBuilder:
    """Collects one request's headers (``on_header``) and builds its ``RequestHead``."""

    __slots__ = ("_parts", "_flags", "_extra")

    def __init__(self) -> None:
        self._parts: list[bytes] = [b""]
        self._flags = 0
        self._extra: dict[int, Any] | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        kind = _CLASSES.get(name.lower())
        if kind is None:
            self._parts += (name, b": ", value, b"\r\n")
        elif kind == _USER_AGENT:
            if value.startswith(KUBE_PROBE_PREFIX) and not self._flags & F_ROUTED:
                self._flags |= F_KUBELET_PROBE
            self._parts += (name, b": ", value, b"\r\n")
        else:
            self._special_header(kind, name, value)

    def reset_head(self) -> None:
        self._parts = [b""]
        self._flags = 0
        self._extra = None

    def peek_flags(self) -> int:
        return self._flags

    def take_head(self, method: bytes, target: bytes, *, http10: bool, client_ip: bytes) -> RequestHead:
        parts = self._parts
        flags = self._flags
        extra = self._extra
        self._parts = [b""]
        self._flags = 0
        self._extra = None
        parts[0] = method + b" " + target + (_LINE_END_10 if http10 else _LINE_END_11)
        if extra is None:
            parts += (b"X-Forwarded-For", b": ", client_ip, b"\r\n", b"\r\n")
            return RequestHead(b"".join(parts), flags, None, None, parts)
        return _finish_special(parts, flags, extra, http10=http10, client_ip=client_ip)

    def _special_header(self, kind: int, name: bytes, value: bytes) -> None:
        if kind == _DROP:
            return
        if kind == _ROUTED:  # dropped, and whatever User-Agent came with it is no kubelet's
            self._flags = (self._flags | F_ROUTED) & ~F_KUBELET_PROBE
            return
        extra = self._extra
        if extra is None:
            extra = self._extra = {}
        if kind == _CONTENT_LENGTH:
            if value.strip() not in (b"0", b""):
                self._flags |= F_LENGTH
            self._parts += (name, b": ", value, b"\r\n")
        elif kind == _XFF:
            extra.setdefault(_XFF, []).append(value.strip())
        elif kind == _XFP:
            extra[_XFP] = value.strip()
            self._parts += (name, b": ", value, b"\r\n")
        elif kind == _XFH:
            extra[_XFH] = value.strip()
            self._parts += (name, b": ", value, b"\r\n")
        elif kind == _FORWARDED:
            extra[_FORWARDED] = True
            self._parts += (name, b": ", value, b"\r\n")
        elif kind == _PROXY:
            if value.strip().lower() == ACTIVATOR:
                self._flags |= F_PROXIED
            self._parts += (name, b": ", value, b"\r\n")
        elif kind == _PROBE:
            self._flags |= F_PROBE
            extra[_PROBE] = value.strip()
        elif kind == _ORIGINAL_HOST:
            extra[_ORIGINAL_HOST] = value.strip()
        elif kind == _CONNECTION:
            for token in value.lower().split(b","):
                token = token.strip()
                if token == b"close":
                    self._flags |= F_CONNECTION_CLOSE
                elif token == b"keep-alive":
                    self._flags |= F_CONNECTION_KEEP_ALIVE
                elif token == b"upgrade":
                    extra[_CONNECTION] = True
                elif token:
                    extra.setdefault(_DROP, set()).add(token)
        elif kind == _TRANSFER_ENCODING:
            if b"chunked" in value.lower():
                self._flags |= F_CHUNKED
        elif kind == _UPGRADE:
            extra[_UPGRADE] = value.strip()
        elif kind == _EXPECT:
            if value.strip().lower() == b"100-continue":
                self._flags |= F_EXPECT_CONTINUE
            else:
                self._parts += (name, b": ", value, b"\r\n")
        elif kind == _TE:
            if value.strip().lower() == b"trailers":
                self._parts += (name, b": ", value, b"\r\n")


def _finish_special(parts: list[bytes], flags: int, extra: dict[int, Any], *, http10: bool,
                    client_ip: bytes) -> RequestHead:
    dropped: set[bytes] = set(extra.get(_DROP, ()))
    if flags & F_CHUNKED:
        dropped.add(b"content-length")  # both present: chunked wins (RFC 9112 6.3)
        flags &= ~F_LENGTH
    if _ORIGINAL_HOST in extra:
        dropped.add(b"host")
    if dropped:
        kept = [parts[0]]
        for index in range(1, len(parts), 4):
            if parts[index].lower() not in dropped:
                kept += parts[index:index + 4]
        parts = kept
    if _ORIGINAL_HOST in extra:
        parts += (b"Host", b": ", extra[_ORIGINAL_HOST], b"\r\n")
    xff_values: list[bytes] = extra.get(_XFF, [])
    prior_xff = b", ".join(value for value in xff_values if value)
    if not extra.get(_FORWARDED) and (prior_xff or extra.get(_XFP) or extra.get(_XFH)):
        forwarded = forwarded_from_x_forwarded(prior_xff, extra.get(_XFP, b""), extra.get(_XFH, b""))
        parts += (b"Forwarded", b": ", forwarded, b"\r\n")
    parts += (b"X-Forwarded-For", b": ", prior_xff + b", " + client_ip if prior_xff else client_ip, b"\r\n")
    upgrade = None
    if extra.get(_CONNECTION) and extra.get(_UPGRADE):
        upgrade = extra[_UPGRADE]
        flags |= F_UPGRADE
        parts += (b"Connection", b": ", b"Upgrade", b"\r\n", b"Upgrade", b": ", upgrade, b"\r\n")
    elif flags & F_CHUNKED:
        parts += (b"Transfer-Encoding", b": ", b"chunked", b"\r\n")
    elif http10 and flags & F_CONNECTION_KEEP_ALIVE:
        parts += (b"Connection", b": ", b"keep-alive", b"\r\n")
    parts.append(b"\r\n")
    return RequestHead(b"".join(parts), flags, extra.get(_PROBE), upgrade, parts)


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
