"""The one error a user of `qctl migrate` is expected to fix (shown as one line, exit code 2)."""

from __future__ import annotations


class MigrateError(Exception):
    """A migration request that cannot proceed: bad phase, dirty tree, changed file, no ledger..."""
