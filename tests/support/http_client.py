"""One keep-alive HTTP/1.1 connection for talking to the local stack (the ingress, a pod).

Used by the end-to-end tests and the benchmarks, which send many requests in a row and must
not pay a TCP handshake for each. ``get`` reconnects after the server closed the connection
and drops it on any error, so the next call starts afresh.
"""

from __future__ import annotations

import http.client


class KeepAliveClient:
    """GET over one reused connection to ``address:port``, with ``host`` as the Host header."""

    def __init__(self, address: str, port: int, host: str | None = None, *, timeout: float = 10) -> None:
        self.address, self.port, self.host, self.timeout = address, port, host, timeout
        self.connection: http.client.HTTPConnection | None = None

    def get(self, path: str = "/") -> tuple[int, str]:
        """(status, body) of ``GET path``."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)
        headers = {"Host": self.host} if self.host else {}
        try:
            self.connection.request("GET", path, headers=headers)
            response = self.connection.getresponse()
            body = response.read().decode(errors="replace")
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, body

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
