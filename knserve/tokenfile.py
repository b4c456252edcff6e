"""A secret token kept in a file (a mounted Secret or service-account token), re-read now and then.

The activator reads its service-account token (for the autoscaler) and the ingress token
(Secret ``knserve-ingress-token``) this way; the call queue reads the ingress token to mark
its own dispatches. The kubelet rewrites a mounted file when its source changes, so the file
is read again at most once a minute. Side effects: reads the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

REREAD_SECONDS: Final = 60.0


class TokenFile:
    """A token read from a file, at most once a minute (None while it cannot be read or is empty)."""

    def __init__(self, path: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._monotonic = monotonic
        self._token: str | None = None
        self._read_at = -REREAD_SECONDS

    def __call__(self) -> str | None:
        now = self._monotonic()
        if now - self._read_at >= REREAD_SECONDS:
            try:
                self._token = self._path.read_text().strip() or None
            except OSError:
                self._token = None
            self._read_at = now
        return self._token
