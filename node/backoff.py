"""Crash back-off for restarting containers, the kubelet's way.

The first restart after a crash is immediate; each further one waits twice as long as the
one before, from 10 s up to 5 min, counted from when the container finished. A container
that ran for more than 10 min since its last (re)start starts the sequence again. While a
restart is held back the container waits with reason ``CrashLoopBackOff``.

Pure: the caller passes times (seconds on any monotonic or wall clock).
"""

from __future__ import annotations

import dataclasses

INITIAL_BACKOFF = 10.0
MAX_BACKOFF = 300.0


@dataclasses.dataclass
class RestartBackoff:
    initial: float = INITIAL_BACKOFF
    maximum: float = MAX_BACKOFF
    current: float = 0.0  # delay the next restart will wait; 0 = none yet
    last_restart: float | None = None

    def _expired(self, finished_at: float) -> bool:
        return self.last_restart is None or finished_at - self.last_restart > 2 * self.maximum

    def restart_at(self, finished_at: float) -> float:
        """When a container that finished at ``finished_at`` may start again."""
        if self.current == 0.0 or self._expired(finished_at):
            return finished_at
        return finished_at + self.current

    def record_restart(self, *, finished_at: float, now: float) -> None:
        """Note a restart at ``now`` of a container that finished at ``finished_at``."""
        if self.current == 0.0 or self._expired(finished_at):
            self.current = self.initial
        else:
            self.current = min(self.current * 2, self.maximum)
        self.last_restart = now

    def note_start(self, now: float) -> None:
        """The container started for the first time (or was adopted) at ``now``."""
        if self.last_restart is None:
            self.last_restart = now


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether a container that exited with ``exit_code`` restarts under ``restart_policy``."""
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return exit_code != 0
    return True
