"""Readiness of the app: the revision's readiness probe, run by the queue-proxy.

``ReadinessTracker`` is the pure part: Kubernetes' success/failure thresholds and the
probing cadence (every 25 ms until first ready when ``periodSeconds`` is 0, as
Knative's aggressive probing does; every second after that). ``ReadinessProber`` is the
async shell that runs httpGet / tcpSocket / exec probes against the app (network to the
app's port, or a subprocess for exec) and feeds the tracker. The proxy reads
``tracker.ready`` to answer ``K-Network-Probe: queue`` and kubelet probes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from queueproxy.settings import AGGRESSIVE_PROBE_INTERVAL_SECONDS, ProbeSpec

logger = logging.getLogger(__name__)

PROBE_USER_AGENT = "Knative-Queue-Proxy-Probe"
AGGRESSIVE_READY_INTERVAL_SECONDS = 1.0


class ReadinessTracker:
    """Consecutive successes make the app ready, consecutive failures unready (Kubernetes' rules)."""

    __slots__ = ("spec", "ready", "_successes", "_failures", "on_change")

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.ready = False
        self._successes = 0
        self._failures = 0
        self.on_change: Callable[[bool], None] | None = None

    def record(self, success: bool) -> bool:
        before = self.ready
        if success:
            self._failures = 0
            self._successes += 1
            # aggressive probing flips to ready on the first success, as Knative's does
            if not self.ready and (self.spec.aggressive or self._successes >= self.spec.success_threshold):
                self.ready = True
        else:
            self._successes = 0
            self._failures += 1
            if self.ready and self._failures >= self.spec.failure_threshold:
                self.ready = False
        if self.ready != before and self.on_change is not None:
            self.on_change(self.ready)
        return self.ready

    def next_delay(self) -> float:
        if self.spec.aggressive:
            return AGGRESSIVE_READY_INTERVAL_SECONDS if self.ready else AGGRESSIVE_PROBE_INTERVAL_SECONDS
        return self.spec.period_seconds


class ReadinessProber:
    def __init__(self, tracker: ReadinessTracker) -> None:
        self.tracker = tracker
        self._logged_failure = False

    async def run(self) -> None:
        """Probe forever at the tracker's cadence (cancel to stop)."""
        spec = self.tracker.spec
        if spec.initial_delay_seconds > 0:
            await asyncio.sleep(spec.initial_delay_seconds)
        while True:
            success = await self.probe_once()
            was_ready = self.tracker.ready
            if self.tracker.record(success) != was_ready:
                logger.info("app %s", "ready" if self.tracker.ready else "not ready")
            await asyncio.sleep(self.tracker.next_delay())

    async def probe_once(self) -> bool:
        spec = self.tracker.spec
        try:
            async with asyncio.timeout(spec.timeout_seconds):
                if spec.kind == "http":
                    return await self._http(spec)
                if spec.kind == "tcp":
                    _, writer = await asyncio.open_connection(spec.host, spec.port)
                    writer.close()
                    return True
                return await self._exec(spec)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            if not self._logged_failure:
                logger.debug("readiness probe failed: %r", error)
                self._logged_failure = True
            return False

    async def _http(self, spec: ProbeSpec) -> bool:
        context = None
        if spec.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(spec.host, spec.port, ssl=context)
        try:
            names = {name.lower() for name, _ in spec.http_headers}
            lines = [f"GET {spec.path} HTTP/1.1"]
            if "host" not in names:
                lines.append(f"Host: {spec.host}:{spec.port}")
            if "user-agent" not in names:
                lines.append(f"User-Agent: {PROBE_USER_AGENT}")
            lines += [f"{name}: {value}" for name, value in spec.http_headers]
            lines += ["Connection: close", "", ""]
            writer.write("\r\n".join(lines).encode("latin-1"))
            status_line = await reader.readline()
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                return False
            return 200 <= int(parts[1]) < 400
        finally:
            writer.close()

    async def _exec(self, spec: ProbeSpec) -> bool:
        process = await asyncio.create_subprocess_exec(
            *spec.command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            return await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
