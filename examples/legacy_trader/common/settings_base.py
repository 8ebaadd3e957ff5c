"""Stand-in for pydantic-settings on hosts where it is not installed (the backtest boxes).

It keeps the same surface the services use: class-level defaults, environment overrides by
field name, and `Field(default=..., ge=..., le=...)` bounds checked at construction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, get_type_hints


class SettingsError(ValueError):
    """A setting from the environment is malformed or outside its declared bounds."""


@dataclass(frozen=True)
class FieldInfo:
    default: Any
    ge: float | None = None
    le: float | None = None
    description: str = ""


def Field(  # noqa: N802 - mirrors pydantic's name
    default: Any = None,
    *,
    ge: float | None = None,
    le: float | None = None,
    description: str = "",
) -> Any:
    """Declare a default with optional inclusive bounds."""
    return FieldInfo(default=default, ge=ge, le=le, description=description)


class BaseSettings:
    """Reads each annotated attribute from the environment, else keeps the class default."""

    def __init__(self, **overrides: Any) -> None:
        hints = get_type_hints(type(self))
        for name, kind in hints.items():
            if name.startswith("_"):
                continue
            declared = getattr(type(self), name, None)
            info = declared if isinstance(declared, FieldInfo) else FieldInfo(default=declared)
            if name in overrides:
                value = overrides[name]
            elif name in os.environ:
                value = _coerce(os.environ[name], kind, name)
            else:
                value = info.default
            _check_bounds(name, value, info)
            setattr(self, name, value)

    def model_dump(self) -> dict[str, Any]:
        hints = get_type_hints(type(self))
        return {name: getattr(self, name) for name in hints if not name.startswith("_")}


def _coerce(raw: str, kind: Any, name: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind in (int, float, str):
        try:
            return kind(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc
    return raw


def _check_bounds(name: str, value: Any, info: FieldInfo) -> None:
    if info.ge is not None and value < info.ge:
        raise SettingsError(f"{name}={value} is below its minimum {info.ge}")
    if info.le is not None and value > info.le:
        raise SettingsError(f"{name}={value} is above its maximum {info.le}")
