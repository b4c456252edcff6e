"""The live configuration: a ``ConfigSnapshot`` rebuilt whenever a ``config-*`` ConfigMap changes.

Fed by a ConfigMap informer on the system namespace. A ConfigMap with a bad value is
reported (log and a Warning event-like log line) and the last good value is kept, so a typo
never takes the controller down. ``on_change`` callbacks run after every accepted change
(the controller re-enqueues everything they affect).

No I/O of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kube.informer import Change
from kube.objects import name_of
from serving.config.parsers import ConfigError
from serving.config.snapshot import CONFIG_MAP_NAMES, ConfigSnapshot

log = logging.getLogger(__name__)


class ConfigStore:
    def __init__(self, initial: ConfigSnapshot | None = None) -> None:
        self._snapshot = initial or ConfigSnapshot()
        self._listeners: list[Callable[[str], None]] = []
        self.errors: dict[str, str] = {}

    def snapshot(self) -> ConfigSnapshot:
        return self._snapshot

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def apply(self, name: str, data: dict[str, str] | None) -> bool:
        """Take a new ``data`` for ConfigMap ``name`` (None: deleted, back to defaults)."""
        if name not in CONFIG_MAP_NAMES:
            return False
        try:
            snapshot = self._snapshot.with_configmap(name, data)
        except ConfigError as error:
            self.errors[name] = str(error)
            log.error("ignoring the new %s and keeping the previous one: %s", name, error)
            return False
        self.errors.pop(name, None)
        if snapshot == self._snapshot:
            return False
        self._snapshot = snapshot
        for listener in self._listeners:
            listener(name)
        return True

    def handle(self, change: Change) -> None:
        """Informer handler for ConfigMaps in the system namespace."""
        data = None if change.kind == "delete" else dict(change.object.get("data") or {})
        self.apply(name_of(change.object), data)
