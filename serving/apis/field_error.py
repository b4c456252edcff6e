"""Validation errors that carry field paths and render the way Knative's do.

A port of the behaviour of knative.dev/pkg ``apis.FieldError``: errors are collected (never
raised one at a time), nested with ``via_field`` / ``via_index`` / ``via_key`` as validation
walks down an object, and rendered as ``message: path1, path2`` lines — errors with the same
message and details merge their paths; lines are sorted by message. ``details`` goes on the
next line. Warnings are kept apart (``level="Warning"``) so the webhook can return them as
admission warnings. Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Literal

from serving.config.parsers import format_float

Level = Literal["Error", "Warning"]
CURRENT_FIELD = ""


def _is_index(part: str) -> bool:
    return part.startswith("[") and part.endswith("]")


def flatten(parts: Iterable[str]) -> str:
    """Join path parts with dots; ``[i]`` parts stick to the part before them; empty parts vanish."""
    out: list[str] = []
    for part in parts:
        for piece in part.split("."):
            if piece == CURRENT_FIELD:
                continue
            if out and _is_index(piece):
                out[-1] += piece
            else:
                out.append(piece)
    return ".".join(out)


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One diagnostic (``message`` at ``paths``) or, through ``also``, a bag of them."""

    message: str = ""
    paths: tuple[str, ...] = ()
    details: str = ""
    level: Level = "Error"
    nested: tuple[FieldError, ...] = ()

    # --- building ------------------------------------------------------------------------------
    def also(self, *others: FieldError | None) -> FieldError:
        extra = tuple(o for o in others if o is not None and not o.is_empty())
        if not extra:
            return self
        return dataclasses.replace(self, nested=self.nested + extra)

    def is_empty(self) -> bool:
        return not self.message and not self.details and not self.paths and not self.nested

    def via_field(self, *prefix: str) -> FieldError:
        return FieldError(
            message=self.message,
            details=self.details,
            level=self.level,
            paths=tuple(flatten((*prefix, p)) for p in self.paths),
            nested=tuple(e.via_field(*prefix) for e in self.nested),
        )

    def via_index(self, index: int) -> FieldError:
        return self.via_field(f"[{index}]")

    def via_field_index(self, field: str, index: int) -> FieldError:
        return self.via_index(index).via_field(field)

    def via_key(self, key: str) -> FieldError:
        return self.via_field(f"[{key}]")

    def at(self, level: Level) -> FieldError:
        return dataclasses.replace(self, level=level, nested=tuple(e.at(level) for e in self.nested))

    # --- reading -------------------------------------------------------------------------------
    def _normalized(self) -> list[FieldError]:
        out: list[FieldError] = []
        if self.message:
            out.append(FieldError(self.message, self.paths, self.details, self.level))
        for error in self.nested:
            out.extend(error._normalized())
        return out

    def filter(self, level: Level) -> FieldError | None:
        kept = [e for e in self._normalized() if e.level == level]
        return Errors(*kept) if kept else None

    def wrapped_errors(self) -> list[FieldError]:
        """The flat, merged and sorted list of diagnostics."""
        merged: dict[tuple[str, str, str], list[str]] = {}
        for error in self._normalized():
            paths = merged.setdefault((error.level, error.message, error.details), [])
            for path in error.paths:
                if path not in paths:
                    paths.append(path)
        order = {"Error": 0, "Warning": 1}
        keys = sorted(merged, key=lambda k: (k[1], k[2], order[k[0]]))
        return [FieldError(message, tuple(sorted(merged[(lvl, message, details)])), details, lvl)  # type: ignore[arg-type]
                for lvl, message, details in keys]

    def error(self) -> str:
        lines = []
        for error in self.wrapped_errors():
            line = f"{error.message}: {', '.join(error.paths)}"
            if error.details:
                line += f"\n{error.details}"
            lines.append(line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.error()


def Errors(*errors: FieldError | None) -> FieldError:  # noqa: N802 - reads as a constructor
    """Collect several errors into one (empty when all are ``None``)."""
    return FieldError().also(*errors)


# --- constructors with Knative's wording ------------------------------------------------------
def err_missing_field(*paths: str) -> FieldError:
    return FieldError("missing field(s)", paths)


def err_disallowed_fields(*paths: str) -> FieldError:
    return FieldError("must not set the field(s)", paths)


def err_invalid_value(value: Any, path: str, *details: str) -> FieldError:
    return FieldError(f"invalid value: {go_str(value)}", (path,), ", ".join(details))


def err_invalid_array_value(value: Any, field: str, index: int) -> FieldError:
    return err_invalid_value(value, CURRENT_FIELD).via_field_index(field, index)


def err_generic(diagnostic: str, *paths: str) -> FieldError:
    return FieldError(diagnostic, paths)


def err_missing_one_of(*paths: str) -> FieldError:
    return FieldError("expected exactly one, got neither", paths)


def err_multiple_one_of(*paths: str) -> FieldError:
    return FieldError("expected exactly one, got both", paths)


def err_invalid_key_name(key: str, path: str, *details: str) -> FieldError:
    return FieldError(f"invalid key name {go_quote(key)}", (path,), ", ".join(details))


def err_out_of_bounds_value(value: Any, lower: Any, upper: Any, path: str) -> FieldError:
    return FieldError(f"expected {go_str(lower)} <= {go_str(value)} <= {go_str(upper)}", (path,))


# --- Go formatting helpers ----------------------------------------------------------------------
def go_quote(text: str) -> str:
    """Go's ``%q`` for ordinary strings."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def go_str(value: Any) -> str:
    """Go's ``%v`` for the values validation prints (bools lower-case, floats without '.0')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)
