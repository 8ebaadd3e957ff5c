"""The migration ledger: one SQLite file per target repository, `.qctl/migrations.db`.

Its own file rather than the engine journal: the ledger belongs to the repository that was
rewritten (it travels with it, and rollback needs nothing else), while a journal belongs to a
trading run. The `migration` table has the columns of `engine.domain.MigrationRecord`, the same
shape as the journal's `migration` table, plus an `id`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, fields
from pathlib import Path

from engine.domain import MigrationRecord
from migrations.errors import MigrateError

LEDGER_DIR = ".qctl"
LEDGER_FILE = "migrations.db"
APPLIED = "applied"
ROLLED_BACK = "rolled_back"
_COLUMNS = [f.name for f in fields(MigrationRecord)]


def ledger_path(root: Path) -> Path:
    return root / LEDGER_DIR / LEDGER_FILE


class Ledger:
    """Rows of applied and rolled-back codemods, one per file touched per application."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        path = ledger_path(root)
        if not path.exists() and not create:
            self.conn: sqlite3.Connection | None = None
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ignore = path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("*\n", "utf-8")
            self.conn = sqlite3.connect(path)
            cols = ", ".join(f"{c} {'INTEGER' if c == 'ts' else 'TEXT'}" for c in _COLUMNS)
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS migration (id INTEGER PRIMARY KEY, {cols})"
            )
            self.conn.commit()
        except (OSError, sqlite3.Error) as exc:
            raise MigrateError(f"cannot open the migration ledger {path}: {exc}") from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def record(self, records: list[MigrationRecord]) -> None:
        """All rows of one application in one transaction."""
        if self.conn is None:
            raise MigrateError("the migration ledger is not open for writing")
        marks = ", ".join("?" for _ in _COLUMNS)
        with self.conn:
            self.conn.executemany(
                f"INSERT INTO migration ({', '.join(_COLUMNS)}) VALUES ({marks})",
                [astuple(r) for r in records],
            )

    def rows(self, phase: str | None = None, status: str | None = None) -> list[dict]:
        if self.conn is None:
            return []
        sql = f"SELECT id, {', '.join(_COLUMNS)} FROM migration WHERE 1=1"
        args: list[str] = []
        if phase is not None:
            sql += " AND phase = ?"
            args.append(phase)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        cur = self.conn.execute(sql + " ORDER BY id", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def set_status(self, ids: list[int], status: str, detail: str = "") -> None:
        if self.conn is None or not ids:
            return
        with self.conn:
            self.conn.executemany(
                "UPDATE migration SET status = ?, detail = ? WHERE id = ?",
                [(status, detail, i) for i in ids],
            )
