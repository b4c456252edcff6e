"""Start-up of an exec'd queue-proxy: what it loads before it serves (its CPU is in bench/)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)


def imported_modules(log: str) -> set[str]:
    """Module names from ``-X importtime`` lines in a process's output."""
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_a_serving_queue_proxy_loaded_no_resolver_codec_or_status_enum(queue_proxy) -> None:
    """Every new pod pays for what its sidecar imports: a queue-proxy that answers probes has
    not loaded the IDNA codec (ports are bound without getaddrinfo) nor built http.HTTPStatus
    (its own answers need a handful of reason phrases)."""
    proxy = queue_proxy(PYTHONPROFILEIMPORTTIME="1")
    modules = imported_modules(proxy.log())
    assert "uvloop" in modules and "queueproxy.server" in modules  # the log does list imports
    assert "encodings.idna" not in modules
    assert "http" not in modules
