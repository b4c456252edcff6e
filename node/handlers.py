"""Running probe and lifecycle-hook actions: HTTP GET, TCP connect, exec.

``run_action`` performs one ``ProbeAction`` against a pod and answers (passed, message).
HTTP and TCP probes connect from the host to the pod's IP (through the node's bridge); HTTP
probes send ``User-Agent: kube-probe/<version>`` and the probe's headers and count 200-399 as
passing, like the kubelet; exec runs the command in the container, as the kubelet does: in its
network and mount namespaces (its volumes, its /etc/hosts), as its user, with its environment
and working directory, and passes on exit code 0.

Side effects: network connections and short-lived processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp

from node.probes import ActionKind, ProbeAction, http_status_passes
from node.processes import ContainerSetup, preparing_container

PROBE_USER_AGENT = "kube-probe/1.37"
_MAX_MESSAGE = 1024


@contextlib.asynccontextmanager
async def probe_session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for probes: no keep-alive (like the kubelet), no certificate checks."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(force_close=True, ssl=insecure)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        yield session


async def _http_get(
    action: ProbeAction, host: str, port: int, timeout: float, session: aiohttp.ClientSession
) -> tuple[bool, str]:
    scheme = "https" if action.scheme == "HTTPS" else "http"
    path = action.path if action.path.startswith("/") else "/" + action.path
    headers = {"User-Agent": PROBE_USER_AGENT, "Accept": "*/*"}
    for name, value in action.headers:
        headers[name] = value
    url = f"{scheme}://{host}:{port}{path}"
    try:
        async with session.get(
            url, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            body = await response.content.read(_MAX_MESSAGE)
            if http_status_passes(response.status):
                return True, ""
            text = body.decode("utf-8", "replace")
            return False, f"HTTP probe failed with statuscode: {response.status}" + (f": {text}" if text else "")
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except (aiohttp.ClientError, OSError) as error:
        return False, f'Get "{url}": {error}'


async def _tcp_connect(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as error:
        return False, f"dial tcp {host}:{port}: {error.strerror or error}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def _exec(
    command: tuple[str, ...], env: Mapping[str, str], cwd: Path, timeout: float, network_namespace: Path | None,
    container: ContainerSetup | None,
) -> tuple[bool, str]:
    setup = container if container is not None else ContainerSetup(network_namespace=network_namespace)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=dict(env),
            cwd=cwd if container is None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preparing_container(None, setup=setup),
        )
    except OSError as error:
        return False, f'exec: "{command[0]}": {error.strerror or error}'
    except subprocess.SubprocessError:
        where = f"container (pid {container.join_pid})" if container is not None else f"pod's network namespace {network_namespace}"
        return False, f"could not enter the {where}"
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return False, f"command timed out after {timeout:g}s"
    text = output[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    if process.returncode == 0:
        return True, text
    return False, text or f"command exited with code {process.returncode}"


async def run_action(
    action: ProbeAction,
    *,
    pod_ip: str,
    network_namespace: Path | None,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    session: aiohttp.ClientSession,
    container: ContainerSetup | None = None,
) -> tuple[bool, str]:
    """Perform ``action`` once; (passed, message). An exec action runs in ``container`` (a
    setup that joins the running container) when given, else in the pod's network namespace."""
    host = action.host or pod_ip
    port = action.port
    if action.kind is ActionKind.HTTP_GET:
        return await _http_get(action, host, port, timeout, session)
    if action.kind is ActionKind.TCP_SOCKET:
        return await _tcp_connect(host, port, timeout)
    if action.kind is ActionKind.EXEC:
        return await _exec(action.command, env, cwd, timeout, network_namespace, container)
    # gRPC health checking would need the grpc health stubs; a TCP connect is the closest
    # honest check without them.
    return await _tcp_connect(host, port, timeout)
