"""Readiness thresholds and probing cadence, and the prober against real sockets."""

from __future__ import annotations

import asyncio

from queueproxy.readiness import ReadinessProber, ReadinessTracker
from queueproxy.settings import ProbeSpec


def test_aggressive_probe_is_ready_on_first_success_and_polls_fast_until_then() -> None:
    tracker = ReadinessTracker(ProbeSpec(kind="tcp", port=1))
    assert tracker.next_delay() == 0.025
    assert tracker.record(False) is False
    assert tracker.record(True) is True
    assert tracker.next_delay() == 1.0


def test_thresholds_like_kubernetes() -> None:
    changes: list[bool] = []
    tracker = ReadinessTracker(ProbeSpec(kind="tcp", port=1, period_seconds=2, success_threshold=2,
                                         failure_threshold=3))
    tracker.on_change = changes.append
    assert [tracker.record(True), tracker.record(True)] == [False, True]
    assert [tracker.record(False), tracker.record(False), tracker.record(True)] == [True, True, True]
    assert [tracker.record(False), tracker.record(False), tracker.record(False)] == [True, True, False]
    assert changes == [True, False]
    assert tracker.next_delay() == 2


async def test_prober_http_tcp_and_exec() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        status = b"200 OK" if request.startswith(b"GET /ok ") and b"X-Check: yes" in request else b"500 Oops"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        good = ProbeSpec(kind="http", port=port, path="/ok", http_headers=(("X-Check", "yes"),))
        assert await ReadinessProber(ReadinessTracker(good)).probe_once()
        bad = ProbeSpec(kind="http", port=port, path="/missing")
        assert not await ReadinessProber(ReadinessTracker(bad)).probe_once()
        assert await ReadinessProber(ReadinessTracker(ProbeSpec(kind="tcp", port=port))).probe_once()
    closed = ProbeSpec(kind="tcp", port=port)
    assert not await ReadinessProber(ReadinessTracker(closed)).probe_once()
    assert await ReadinessProber(ReadinessTracker(ProbeSpec(kind="exec", port=0, command=("true",)))).probe_once()
    assert not await ReadinessProber(ReadinessTracker(ProbeSpec(kind="exec", port=0, command=("false",)))).probe_once()
    slow = ProbeSpec(kind="exec", port=0, command=("sleep", "5"), timeout_seconds=0.2)
    assert not await ReadinessProber(ReadinessTracker(slow)).probe_once()
