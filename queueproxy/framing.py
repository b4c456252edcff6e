"""The app's HTTP/1.1 response as it passes through: its head, its body's framing, its chunks.

Pure. The upstream connection hands the app's bytes to the client unchanged (upstream.py);
these helpers answer the few questions the proxy must still ask of those bytes:

- ``final_head_span(data)``: where the head of the final response lies, after any 1xx
  interim responses (``103 Early Hints``) that came first;
- ``framing_of(head)``: how the body is delimited: chunked, by ``Content-Length``, or by
  the close of the connection (RFC 9112 §6.3);
- ``with_connection_close(data)``: the same bytes with ``Connection: close`` in the final
  head (RFC 9112 §9.6: a server that will close after the response says so in it);
- ``ChunkedBody``: follows a chunked body across reads, so that a response ended by a
  timeout is ended on a chunk boundary, never inside a chunk the client was promised;
- ``reason_phrase(status)``: the phrase for a status line the proxy writes itself (the
  ones it uses are listed, so start-up need not build ``http.HTTPStatus``).
"""

from __future__ import annotations

from typing import Final

# how a response body is delimited
NO_BODY: Final = 0  # 1xx, 204, 304, or the answer to HEAD
CHUNKED: Final = 1
LENGTH: Final = 2  # Content-Length
UNTIL_CLOSE: Final = 3  # neither: the body ends when the connection closes

_HOP_BY_HOP_IN_RESPONSE: Final = frozenset({b"connection", b"keep-alive"})
_REASONS: Final = {
    200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed", 408: b"Request Timeout",
    431: b"Request Header Fields Too Large", 499: b"Unknown", 500: b"Internal Server Error", 502: b"Bad Gateway",
    503: b"Service Unavailable", 504: b"Gateway Timeout",
}
CONNECTION_CLOSE_LINE: Final = b"Connection: close"


def reason_phrase(status: int) -> bytes:
    """The reason phrase for ``status`` (``Unknown`` for a code HTTP does not name)."""
    phrase = _REASONS.get(status)
    if phrase is None:
        from http import HTTPStatus  # other codes are rare: build the enum only when one comes

        phrase = HTTPStatus(status).phrase.encode() if status in HTTPStatus._value2member_map_ else b"Unknown"
    return phrase


def final_head_span(data: bytes | bytearray) -> tuple[int, int]:
    """``(start, end)`` of the final response head in ``data`` (``end`` past its blank line).

    ``(0, -1)`` when the final head is not complete in ``data``. Interim responses
    (1xx other than 101) have no body, so each one's head simply follows the last.
    """
    start = 0
    while True:
        end = data.find(b"\r\n\r\n", start)
        if end < 0:
            return 0, -1
        line_end = data.find(b"\r\n", start)
        parts = data[start:line_end].split(b" ", 2)
        code = parts[1] if len(parts) > 1 else b""
        if len(code) == 3 and code.startswith(b"1") and code != b"101":
            start = end + 4
            continue
        return start, end + 4


def _header_lines(head: bytes) -> list[bytes]:
    """The status line and header lines of one head (without CRLFs or the blank line)."""
    return head.rstrip(b"\r\n").split(b"\r\n")


def framing_of(head: bytes, *, head_request: bool = False) -> int:
    """How the body that follows ``head`` (one final response head) is delimited."""
    lines = _header_lines(head)
    parts = lines[0].split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if head_request or status in (204, 304) or 100 <= status < 200:
        return NO_BODY
    transfer_coding = None
    has_length = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            transfer_coding = value.strip().lower()
        elif name == b"content-length":
            has_length = True
    if transfer_coding is not None:
        # RFC 9112 §6.3: chunked only as the final coding; any other coding ends with the close
        final = transfer_coding.rsplit(b",", 1)[-1].strip()
        return CHUNKED if final == b"chunked" else UNTIL_CLOSE
    return LENGTH if has_length else UNTIL_CLOSE


def with_connection_close(data: bytes) -> bytes:
    """``data`` with the final head saying ``Connection: close`` (its own Connection and
    Keep-Alive headers dropped). Unchanged when the final head is not complete in ``data``."""
    start, end = final_head_span(data)
    if end < 0:
        return data
    lines = _header_lines(data[start:end])
    kept = [lines[0]]
    for line in lines[1:]:
        if line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP_IN_RESPONSE:
            kept.append(line)
    kept.append(CONNECTION_CLOSE_LINE)
    return data[:start] + b"\r\n".join(kept) + b"\r\n\r\n" + data[end:]


class ChunkedBody:
    """Where a chunked body stands after the bytes fed so far.

    Fed only bytes the parser has accepted, so the syntax is known to be valid. The work
    is per chunk, not per byte: inside a chunk a read only lowers ``remaining``.
    """

    __slots__ = ("remaining", "_line", "last_chunk_seen")

    def __init__(self) -> None:
        self.remaining = 0  # bytes of the current chunk's data and its CRLF still to come
        self._line = b""  # a chunk-size line split between reads
        self.last_chunk_seen = False  # the zero-size chunk is in: trailers follow

    @property
    def at_boundary(self) -> bool:
        """True between two chunks: the client could be sent the last chunk now."""
        return not self.remaining and not self._line and not self.last_chunk_seen

    def feed(self, data: bytes | bytearray, start: int = 0, end: int | None = None, *,
             stop_at_boundary: bool = False) -> int:
        """Account for ``data[start:end]``; returns the offset in ``data`` up to which it was
        taken: ``end``, unless ``stop_at_boundary`` and a chunk ended before that."""
        size = len(data) if end is None else end
        position = start
        while position < size:
            if self.last_chunk_seen:
                return size
            remaining = self.remaining
            if remaining:
                taken = min(remaining, size - position)
                self.remaining = remaining - taken
                position += taken
                if stop_at_boundary and not self.remaining:
                    return position
                continue
            line_end = data.find(b"\n", position, size)
            if line_end < 0:
                self._line += bytes(data[position:size])
                return size
            line = self._line + bytes(data[position:line_end])
            self._line = b""
            position = line_end + 1
            chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            if chunk_size == 0:
                self.last_chunk_seen = True
            else:
                self.remaining = chunk_size + 2
        return size
