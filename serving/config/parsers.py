"""``ConfigError`` and the value parsers every ConfigMap model uses, and Go's spelling of
durations and floats both ways (messages print values as Knative's Go code does).

Values are parsed the way Knative's ``knative.dev/pkg/configmap`` does (Go integers, floats,
booleans via ``strconv.ParseBool``, Go durations, Kubernetes quantities). The ``_example`` key
is documentation only and never read. Pure; no side effects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

EXAMPLE_KEY: Final = "_example"


class ConfigError(ValueError):
    """A ConfigMap value that cannot be used; the text names the ConfigMap, the key and the rule."""

    def __init__(self, config_map: str, key: str | None, problem: str) -> None:
        where = f"{config_map}: {key}" if key else config_map
        super().__init__(f"{where}: {problem}")
        self.config_map = config_map
        self.key = key
        self.problem = problem


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (``60s``, ``1m30s``, ``500ms``, ``0``); ValueError if not one."""
    body = text.strip()
    sign = 1.0
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def format_float(value: float) -> str:
    """Go's ``%v``/``%g`` for a float64: ``110``, ``0.01``, ``1.5``."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for whole and fractional seconds: ``6s``, ``1h0m0s``, ``0s``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = format_float(round(secs, 9))
    if hours:
        return f"{sign}{int(hours)}h{int(minutes)}m{secs_text}s"
    if minutes:
        return f"{sign}{int(minutes)}m{secs_text}s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{sign}{format_float(round(ms, 6))}ms"
    return f"{sign}{secs_text}s"


def is_quantity(text: str) -> bool:
    """Whether ``text`` parses as a Kubernetes resource quantity (``100m``, ``1Gi``, ``0.5``)."""
    return bool(_QUANTITY.match(text.strip()))


class Reader:
    """Typed reads of one ConfigMap's data, each failing with a ConfigError for that key."""

    def __init__(self, config_map: str, data: Mapping[str, str] | None) -> None:
        self.config_map = config_map
        self.data = {k: v for k, v in (data or {}).items() if k != EXAMPLE_KEY}

    def error(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(self.config_map, key, problem)

    def has(self, key: str) -> bool:
        return key in self.data

    def _raw(self, *keys: str) -> tuple[str, str] | None:
        for key in keys:
            if key in self.data:
                return key, self.data[key].strip()
        return None

    def string(self, default: str, *keys: str) -> str:
        found = self._raw(*keys)
        return default if found is None else found[1]

    def integer(self, default: int, *keys: str) -> int:
        found = self._raw(*keys)
        if found is None:
            return default
        key, value = found
        try:
            return int(value, 10)
        except ValueError:
            raise self.error(key, f"{value!r} is not an integer") from None

    def number(self, default: float, *keys: str) -> float:
        found = self._raw(*keys)
        if found is None:
            return default
        key, value = found
        try:
            return float(value)
        except ValueError:
            raise self.error(key, f"{value!r} is not a number") from None

    def boolean(self, default: bool, *keys: str) -> bool:
        found = self._raw(*keys)
        if found is None:
            return default
        key, value = found
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise self.error(key, f"{value!r} is not a boolean (use true or false)")

    def duration(self, default: float, *keys: str) -> float:
        """Seconds."""
        found = self._raw(*keys)
        if found is None:
            return default
        key, value = found
        try:
            return parse_go_duration(value)
        except ValueError:
            raise self.error(key, f"{value!r} is not a duration (for example 60s, 1m30s, 500ms)") from None

    def quantity(self, *keys: str) -> str | None:
        found = self._raw(*keys)
        if found is None:
            return None
        key, value = found
        if not is_quantity(value):
            raise self.error(key, f"{value!r} is not a resource quantity (for example 100m, 128Mi)")
        return value
