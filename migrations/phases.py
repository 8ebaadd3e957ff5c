"""The four phases, in the order the owner planned them."""

from __future__ import annotations

from migrations.base import PolicyCodemod
from migrations.errors import MigrateError
from migrations.phase_harvest import HarvestFromPolicy
from migrations.phase_kill import KillFromPolicy
from migrations.phase_sizing import SizingFallbacks
from migrations.phase_universe import UniverseFromPolicy

PHASES: dict[str, type[PolicyCodemod]] = {
    "1": SizingFallbacks,
    "2": UniverseFromPolicy,
    "3": HarvestFromPolicy,
    "4": KillFromPolicy,
}


def phase_number(name: str) -> str:
    """`1`..`4` or a phase name (`sizing`, `universe`, `harvest`, `kill`) -> its number."""
    text = str(name).strip().lower()
    if text in PHASES:
        return text
    for number, cls in PHASES.items():
        if text == cls.PHASE:
            return number
    names = ", ".join(f"{n} ({c.PHASE})" for n, c in PHASES.items())
    raise MigrateError(f"unknown phase {name!r}; phases are {names}")


def label(number: str) -> str:
    return f"{number} ({PHASES[number].PHASE})"
