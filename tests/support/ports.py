"""Ports for servers that tests and benchmarks start on this machine."""

from __future__ import annotations

import socket

_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now, and never one this process handed out before:
    the kernel may offer a port again once the probe closes, before the server it was meant
    for has bound it (two servers of one fixture then race for the same port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
