"""The library behind `qctl migrate`: init, plan, apply, status and rollback of one repository."""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from audit.config import AuditConfig
from audit.finding import Finding
from engine.domain import MigrationRecord
from migrations.accessor import InitResult, init_accessor, is_generated_accessor
from migrations.base import Unhandled
from migrations.config import MigrateConfig, load_audit_config, load_migrate_config
from migrations.errors import MigrateError
from migrations.ledger import APPLIED, LEDGER_DIR, ROLLED_BACK, Ledger
from migrations.patch import apply_patch, make_patch
from migrations.phases import PHASES, label, phase_number
from migrations.runner import findings_for, migratable_files, run_phase


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class PhasePlan:
    number: str
    name: str
    description: str
    resolves: list[Finding]
    files: list[str]
    cannot: list[Unhandled]
    failed: dict[str, str]
    removed: list[str]
    notes: list[str]
    limits: tuple[str, ...] = ()


@dataclass
class ApplyResult:
    number: str
    diff: str
    files: list[str]
    failed: dict[str, str]
    written: bool
    cannot: list[Unhandled] = field(default_factory=list)


@dataclass
class PhaseStatus:
    number: str
    name: str
    applied: bool
    files: list[str]
    open_findings: list[Finding]


def _configs(path: Path) -> tuple[MigrateConfig, AuditConfig]:
    config = load_migrate_config(path)
    return config, load_audit_config(config.root)


def init(path: Path, *, force: bool = False) -> InitResult:
    """Write the policy accessor module into the repository at `path`."""
    config, audit = _configs(path)
    texts, _ = migratable_files(config, audit)
    findings = [f for rel, text in texts.items() for f in findings_for(rel, text, audit)]
    return init_accessor(config, findings, force=force)


def plan(path: Path) -> list[PhasePlan]:
    """Per phase, on the code as it is now: what it resolves, touches and cannot handle."""
    config, audit = _configs(path)
    out = []
    scans: dict = {}
    for number, phase in PHASES.items():
        run = run_phase(phase, config, audit, scans)
        out.append(
            PhasePlan(
                number,
                phase.PHASE,
                phase.DESCRIPTION,
                run.resolved,
                [c.path for c in run.changed],
                run.cannot,
                {c.path: c.reason for c in run.failed},
                sorted(set(run.removed)),
                run.notes,
                phase.CANNOT,
            )
        )
    return out


def apply(path: Path, phase: str, *, write: bool = False, allow_dirty: bool = False) -> ApplyResult:
    """The phase's diff; with `write`, the files are rewritten and the ledger records them."""
    number = phase_number(phase)
    config, audit = _configs(path)
    if not config.accessor_file.is_file():
        raise MigrateError(
            f"no policy accessor at {config.accessor_path}: run `qctl migrate init {path}` first"
        )
    if write and not allow_dirty:
        _refuse_dirty(config)
    run = run_phase(PHASES[number], config, audit)
    changed = run.changed
    diff = "".join(make_patch(c.before, c.after, c.path) for c in changed)
    result = ApplyResult(
        number,
        diff,
        [c.path for c in changed],
        {c.path: c.reason for c in run.failed},
        False,
        run.cannot,
    )
    if not write or not changed:
        return result
    for c in changed:  # the tree must still hold what was transformed
        if (config.root / c.path).read_bytes().decode("utf-8") != c.before:
            raise MigrateError(f"{c.path} changed while the phase ran; nothing written")
    ledger = Ledger(config.root, create=True)
    try:
        ts = int(time.time() * 1000)
        records = [
            MigrationRecord(
                ts=ts,
                repo=str(config.root),
                phase=number,
                codemod=PHASES[number].__name__,
                file=c.path,
                status=APPLIED,
                before_sha256=sha256(c.before),
                after_sha256=sha256(c.after),
                reverse_patch=make_patch(c.after, c.before, c.path),
            )
            for c in changed
        ]
        for c in changed:
            _write(config.root / c.path, c.after)
        ledger.record(records)
    finally:
        ledger.close()
    result.written = True
    return result


def _write(path: Path, text: str) -> None:
    """Write bytes exactly (no newline translation), keeping the file's mode."""
    tmp = path.with_name(f".{path.name}.qctl-tmp")
    tmp.write_bytes(text.encode("utf-8"))
    with contextlib.suppress(OSError):
        tmp.chmod(path.stat().st_mode)
    tmp.replace(path)


def _refuse_dirty(config: MigrateConfig) -> None:
    """Refuse uncommitted changes, except qctl's own (ledger, accessor, applied phases)."""
    root = config.root
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return  # not a git work tree: the ledger's reverse patches are the safety net
    ledger = Ledger(root)
    try:
        latest = {r["file"]: r["after_sha256"] for r in ledger.rows(status=APPLIED)}
    finally:
        ledger.close()
    dirty = []
    entries = out.split("\0")
    skip_next = False
    for entry in entries:
        if skip_next or len(entry) < 4:
            skip_next = False
            continue
        if entry[0] in "RC":
            skip_next = True  # the next entry is the rename's source
        full = Path(top) / entry[3:]
        try:
            rel = full.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if rel.startswith(f"{LEDGER_DIR}/") or rel == config.accessor_path:
            continue
        if rel.startswith(".qctl_cache/") or "/__pycache__/" in f"/{rel}":
            continue
        if (
            rel in latest
            and full.is_file()
            and sha256(full.read_bytes().decode("utf-8", "replace")) == latest[rel]
        ):
            continue
        dirty.append(rel)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise MigrateError(
            f"uncommitted changes in {shown}: commit or stash them first, or pass --allow-dirty"
        )


def status(path: Path) -> list[PhaseStatus]:
    """Applied phases (from the ledger) and the audit findings each phase still owns."""
    config, audit = _configs(path)
    texts, _ = migratable_files(config, audit)
    findings = [f for rel, text in texts.items() for f in findings_for(rel, text, audit)]
    ledger = Ledger(config.root)
    try:
        applied = ledger.rows(status=APPLIED)
    finally:
        ledger.close()
    out = []
    for number, phase in PHASES.items():
        rows = [r for r in applied if r["phase"] == number]
        out.append(
            PhaseStatus(
                number,
                phase.PHASE,
                bool(rows),
                sorted({r["file"] for r in rows}),
                [f for f in findings if phase.selects(f)],
            )
        )
    return out


def rollback(path: Path, phase: str) -> list[str]:
    """Restore every file the phase touched, byte for byte; refuse if one changed since."""
    number = phase_number(phase)
    config = load_migrate_config(path)
    ledger = Ledger(config.root)
    try:
        rows = ledger.rows(phase=number, status=APPLIED)
        if not rows:
            raise MigrateError(f"phase {label(number)} is not applied in {config.root}")
        return _restore(config, ledger, rows, f"phase {label(number)} was applied")
    finally:
        ledger.close()


@dataclass
class RollbackAll:
    phases: list[str]  # rolled back, newest first
    restored: list[str]
    removed: list[str]  # what `init` wrote and rollback deleted
    kept: str = ""  # why the accessor stayed, when it did


def rollback_all(path: Path) -> RollbackAll:
    """Undo every applied phase (newest first) and remove the accessor module `init` wrote, so
    the repository is as it was before qctl. Nothing is restored if one file changed since its
    phase was applied; the accessor stays if a file still imports it or qctl did not write it."""
    config = load_migrate_config(path)
    ledger = Ledger(config.root)
    try:
        rows = ledger.rows(status=APPLIED)
        phases = list(dict.fromkeys(r["phase"] for r in reversed(rows)))
        restored = _restore(config, ledger, rows, "its phase was applied") if rows else []
    finally:
        ledger.close()
    result = RollbackAll(phases, restored, [])
    accessor = config.accessor_file
    if not accessor.is_file():
        if not rows:
            raise MigrateError(
                f"nothing to roll back in {config.root}: no phase applied, no accessor"
            )
        return result
    if not is_generated_accessor(accessor):
        result.kept = f"{config.accessor_path} was not written by qctl"
        return result
    users = _importers(config)
    if users:
        result.kept = f"{config.accessor_path} is still imported by {', '.join(users[:5])}"
        return result
    accessor.unlink()
    result.removed.append(config.accessor_path)
    folder = accessor.parent
    if folder != config.root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # init made it for the accessor (git keeps no empty folders anyway)
        result.removed.append(folder.relative_to(config.root).as_posix() + "/")
    return result


def _importers(config: MigrateConfig) -> list[str]:
    """Files of the repository that import the accessor module."""
    head, _, name = config.accessor_module.rpartition(".")
    forms = [rf"^\s*import\s+{re.escape(config.accessor_module)}\b"]
    if head:
        forms.append(rf"^\s*from\s+{re.escape(head)}\s+import\s+.*\b{re.escape(name)}\b")
    forms.append(rf"^\s*from\s+{re.escape(config.accessor_module)}\s+import\b")
    pattern = re.compile("|".join(forms), re.MULTILINE)
    texts, _ = migratable_files(config, load_audit_config(config.root))
    return sorted(
        rel for rel, text in texts.items() if rel != config.accessor_path and pattern.search(text)
    )


def _restore(config: MigrateConfig, ledger: Ledger, rows: list[dict], since: str) -> list[str]:
    """Apply the reverse patches of `rows`, newest first, all or nothing; mark them rolled back."""
    restored: dict[str, str] = {}
    for row in reversed(rows):  # newest first, in case a file was touched twice
        target = config.root / row["file"]
        current = restored.get(row["file"])
        if current is None:
            try:
                current = target.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise MigrateError(f"cannot read {row['file']}: {exc}") from None
        if sha256(current) != row["after_sha256"]:
            raise MigrateError(
                f"{row['file']} changed since {since} "
                "(by hand or by a later phase: roll that back first); nothing restored"
            )
        before = apply_patch(current, row["reverse_patch"])
        if sha256(before) != row["before_sha256"]:
            raise MigrateError(f"the reverse patch of {row['file']} does not restore it")
        restored[row["file"]] = before
    for rel, text in restored.items():
        _write(config.root / rel, text)
    ledger.set_status([r["id"] for r in rows], ROLLED_BACK)
    return sorted(restored)
