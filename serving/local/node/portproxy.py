"""Keep a pod's declared port answering after its ``PORT`` was remapped.

When the node gives a container a node-unique port in place of the ``PORT`` it declared
(see ``addresses``), traffic that follows the pod spec (a Service's EndpointSlice, a user's
curl to ``<podIP>:<containerPort>``) still arrives on the declared port. ``PortForwarder``
listens on ``<podIP>:<declared>`` and relays each connection to ``<podIP>:<actual>``. The
pod's own sidecars use the actual port directly (``KNSERVE_PORT_<declared>``), so the hot
path never pays for the relay.

Side effects: a listening socket per remapped port, relayed connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class PortForwarder:
    def __init__(self, address: str, declared: int, actual: int) -> None:
        self.address = address
        self.declared = declared
        self.actual = actual
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> bool:
        """Listen on the declared port; False (and a log line) when something else holds it."""
        try:
            self._server = await asyncio.start_server(self._relay, self.address, self.declared)
        except OSError as error:
            log.info("not relaying %s:%d to port %d: %s", self.address, self.declared, self.actual, error)
            return False
        return True

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.address, self.actual)
            except OSError:
                return
            try:
                await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
            finally:
                upstream_writer.close()
        finally:
            client_writer.close()
            self._connections.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
