"""Run one phase over a repository: read, transform, check, never raise.

Like libcst's own runner, every file ends as changed, unchanged or failed-with-a-reason. A
rewritten file must parse and `compile()`; otherwise it is left as it was. A phase is run to a
fixpoint (at most a few rounds): some rewrites depend on others elsewhere (a dataclass default is
only removed once every constructor call in the repository passes the field), and running to the
fixpoint is also what makes a second application change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext

from audit.config import AuditConfig
from audit.finding import Finding
from audit.runner import CACHE_DIR_NAME, discover, read_source, run_audit
from audit.scan import scan_source
from migrations.base import PolicyCodemod, Unhandled
from migrations.config import MigrateConfig
from migrations.repo import RepoIndex
from migrations.wrap import wrap_long_lines

MAX_ROUNDS = 4


@dataclass
class FileChange:
    path: str  # relative to the repository root, POSIX
    before: str
    after: str
    status: str = "unchanged"  # changed | unchanged | failed
    reason: str = ""


@dataclass
class PhaseRun:
    phase: type[PolicyCodemod]
    changes: list[FileChange] = field(default_factory=list)
    resolved: list[Finding] = field(default_factory=list)
    cannot: list[Unhandled] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[FileChange]:
        return [c for c in self.changes if c.status == "changed"]

    @property
    def failed(self) -> list[FileChange]:
        return [c for c in self.changes if c.status == "failed"]


def migratable_files(
    config: MigrateConfig, audit: AuditConfig
) -> tuple[dict[str, str], dict[str, str]]:
    """({rel: text} of the files a phase may touch, {rel: reason} of files it cannot read).

    Test files are left alone (they pin legacy behaviour on purpose), so is the accessor."""
    from audit.config import matches_any

    files, _ = discover([config.root], audit, config.root)
    texts: dict[str, str] = {}
    problems: dict[str, str] = {}
    for source in files:
        rel = source.matched
        if rel == config.accessor_path or audit.is_test(rel) or matches_any(rel, config.exclude):
            continue
        text, _raw, error = read_source(Path(source.path), audit.max_file_bytes)
        if text is None:
            problems[rel] = error
        elif _raw.startswith(b"\xef\xbb\xbf") or text.encode("utf-8") != _raw:
            problems[rel] = "not plain UTF-8 (or has a BOM): left alone so it stays byte-identical"
        else:
            texts[rel] = text
    return texts, problems


def findings_for(rel: str, text: str, audit: AuditConfig) -> list[Finding]:
    try:
        return scan_source(text, rel, audit, match_path=rel).findings
    except Exception:  # noqa: BLE001 - a file the auditor cannot scan gets no rewrite
        return []


def run_phase(
    phase: type[PolicyCodemod],
    config: MigrateConfig,
    audit: AuditConfig,
    scans: dict[tuple[str, str], list[Finding]] | None = None,
) -> PhaseRun:
    """The phase's rewrites of the repository, in memory (nothing is written here).

    `scans` caches audit results by (path, text) between phases of one plan."""
    scans = {} if scans is None else scans
    original, problems = migratable_files(config, audit)
    current = dict(original)
    run = PhaseRun(phase)
    failed: dict[str, str] = {}
    first_selected: list[Finding] = []
    last: list[Unhandled] = []
    repo = RepoIndex.from_sources(current)
    _prefill(config, audit, current, scans)

    def scan(rel: str) -> list[Finding]:
        key = (rel, current[rel])
        if key not in scans:
            scans[key] = findings_for(rel, current[rel], audit)
        return scans[key]

    for round_no in range(MAX_ROUNDS):
        changed: list[str] = []
        last = []
        for rel in sorted(current):
            if rel in failed:
                continue
            findings = scan(rel)
            if round_no == 0:
                first_selected += [f for f in findings if phase.selects(f)]
            if not phase.needs_visit(rel, findings, repo):
                continue
            new_text, command, error = _transform(phase, rel, current[rel], findings, repo, config)
            if error:
                failed[rel] = error
                continue
            assert command is not None
            last += command.cannot
            run.removed += command.removed
            run.notes += [n for n in command.notes if n not in run.notes]
            if new_text != current[rel]:
                current[rel] = new_text
                changed.append(rel)
        if not changed:
            break
        for rel in changed:
            repo.replace(rel, current[rel])
    open_prints = {u.finding.fingerprint for u in last}
    first_by_print = {f.fingerprint: f for f in first_selected}
    run.cannot = [
        Unhandled(first_by_print.get(u.finding.fingerprint, u.finding), u.reason) for u in last
    ]
    run.resolved = [f for f in first_selected if f.fingerprint not in open_prints]
    for rel in sorted(original):
        status = "changed" if current[rel] != original[rel] else "unchanged"
        reason = failed.get(rel, "")
        if reason:
            status = "failed"
        run.changes.append(
            FileChange(
                rel, original[rel], current[rel] if not reason else original[rel], status, reason
            )
        )
    for rel, reason in problems.items():
        run.changes.append(FileChange(rel, "", "", "failed", reason))
    return run


def _prefill(
    config: MigrateConfig,
    audit: AuditConfig,
    texts: dict[str, str],
    scans: dict[tuple[str, str], list[Finding]],
) -> None:
    """Audit the tree as it is on disk in one go, through the auditor's content-hash cache
    (`.qctl_cache`, as `qctl audit` keeps it) and its process pool."""
    if all((rel, text) in scans for rel, text in texts.items()):
        return
    result = run_audit(
        [config.root], audit, display_root=config.root, cache_dir=config.root / CACHE_DIR_NAME
    )
    by_file: dict[str, list[Finding]] = {rel: [] for rel in texts}
    for finding in result.findings:
        if finding.path in by_file and not finding.is_parse_error:
            by_file[finding.path].append(finding)
    for rel, found in by_file.items():
        scans.setdefault((rel, texts[rel]), found)


def _transform(
    phase: type[PolicyCodemod],
    rel: str,
    text: str,
    findings: list[Finding],
    repo: RepoIndex,
    config: MigrateConfig,
) -> tuple[str, PolicyCodemod | None, str]:
    """(new text, the command, error). Never raises: an error is a reason, the file untouched."""
    command = phase(
        CodemodContext(filename=rel),
        findings=findings,
        repo=repo,
        accessor_module=config.accessor_module,
        rel_path=rel,
    )
    try:
        module = cst.parse_module(text)
        new_text = command.transform_module(module).code
    except cst.ParserSyntaxError as exc:
        return text, None, f"does not parse: {str(exc).splitlines()[0]}"
    except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the phase
        return text, None, f"codemod failed: {exc.__class__.__name__}: {exc}"
    if new_text == text:
        return text, command, ""
    new_text = wrap_long_lines(text, new_text, config.line_length)
    try:
        cst.parse_module(new_text)
        compile(new_text, rel, "exec")
    except (SyntaxError, ValueError, cst.ParserSyntaxError) as exc:
        return text, None, f"the rewrite would not compile ({exc}); file left untouched"
    return new_text, command, ""
