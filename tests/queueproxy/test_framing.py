"""The response framing helpers: final head, body framing, Connection: close, chunk tracking."""

from __future__ import annotations

import pytest

from queueproxy.framing import (
    CHUNKED,
    LENGTH,
    NO_BODY,
    UNTIL_CLOSE,
    ChunkedBody,
    final_head_span,
    framing_of,
    with_connection_close,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "want"),
    [
        pytest.param(OK + b"hello", (0, len(OK)), id="one-head"),
        pytest.param(EARLY_HINTS + OK + b"hello", (len(EARLY_HINTS), len(EARLY_HINTS) + len(OK)), id="after-103"),
        pytest.param(SWITCHING + b"frames", (0, len(SWITCHING)), id="101-is-final"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Len", (0, -1), id="incomplete"),
        pytest.param(EARLY_HINTS, (0, -1), id="only-interim"),
    ],
)
def test_final_head_span(data: bytes, want: tuple[int, int]) -> None:
    assert final_head_span(data) == want


@pytest.mark.parametrize(
    ("head", "head_request", "want"),
    [
        pytest.param(OK, False, LENGTH, id="content-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", False, CHUNKED, id="chunked"),
        pytest.param(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n", False, CHUNKED, id="chunked-last"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", False, UNTIL_CLOSE, id="coding-not-chunked"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", False, CHUNKED,
                     id="chunked-beats-length"),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", False, UNTIL_CLOSE, id="no-framing"),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", False, NO_BODY, id="204"),
        pytest.param(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", False, NO_BODY, id="304"),
        pytest.param(OK, True, NO_BODY, id="answer-to-head"),
    ],
)
def test_framing_of(head: bytes, head_request: bool, want: int) -> None:
    assert framing_of(head, head_request=head_request) == want


@pytest.mark.parametrize(
    ("data", "want"),
    [
        pytest.param(OK + b"hello", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                     id="added"),
        pytest.param(b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX: y\r\n\r\nbody",
                     b"HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\nbody", id="keep-alive-replaced"),
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                     id="already-said"),
        pytest.param(EARLY_HINTS + OK + b"hello",
                     EARLY_HINTS + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                     id="final-head-only"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Len", b"HTTP/1.1 200 OK\r\nContent-Len", id="incomplete-untouched"),
    ],
)
def test_with_connection_close(data: bytes, want: bytes) -> None:
    assert with_connection_close(data) == want


BODY = b"5\r\nhello\r\n10;ext=1\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize("split", range(len(BODY) + 1))
def test_chunked_body_knows_its_boundaries_however_the_reads_fall(split: int) -> None:
    boundaries = {0, 10, 10 + len(b"10;ext=1\r\n") + 18}  # start, after "hello", after the 16 x
    body = ChunkedBody()
    body.feed(BODY[:split])
    assert body.at_boundary == (split in boundaries)
    body.feed(BODY[split:])
    assert not body.at_boundary and body.last_chunk_seen  # past the last chunk: trailers may follow


def test_chunked_body_stops_at_the_end_of_the_current_chunk() -> None:
    body = ChunkedBody()
    body.feed(b"5\r\nhel")
    data = b"lo\r\n3\r\nabc\r\n"
    assert body.feed(data, stop_at_boundary=True) == 4 and body.at_boundary
    assert body.feed(data, 4, stop_at_boundary=True) == len(data) and body.at_boundary
    split_size_line = ChunkedBody()
    assert split_size_line.feed(b"1", stop_at_boundary=True) == 1 and not split_size_line.at_boundary
    assert split_size_line.feed(b"0\r\n" + b"y" * 16 + b"\r\nrest", stop_at_boundary=True) == 21
    assert split_size_line.at_boundary
