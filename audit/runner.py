"""Run the scan over a tree: find files, read them safely, use the cache, fan out to processes.

Bad input never stops a run: every file that cannot be read or parsed becomes a `parse-error`
finding with the reason, and the rest of the tree is still audited.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import tokenize
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from io import BytesIO
from pathlib import Path

import libcst as cst

from audit.baseline import Baseline
from audit.config import AuditConfig
from audit.finding import AuditResult, Finding, parse_error
from audit.scan import scan_source

CACHE_DIR_NAME = ".qctl_cache"
CACHE_FILE = "audit-v1.json"
# Below this many files to scan, forking workers costs more than it saves.
PARALLEL_THRESHOLD = 48

Progress = Callable[[int, int], None]


def qctl_version() -> str:
    try:
        return version("qctl")
    except PackageNotFoundError:
        return "0.0.0+local"


@dataclass
class FileOutcome:
    rel: str
    key: str
    findings: list[Finding] = field(default_factory=list)
    suppressed: int = 0


@dataclass(frozen=True)
class SourceFile:
    """A file to audit: where it is, how findings name it, and the path config globs match."""

    path: str
    shown: str  # relative to where the audit runs (paths in reports, SARIF and baselines)
    matched: str  # relative to the config file's folder (include/exclude/tests/per-path globs)


def discover(
    paths: Iterable[Path], config: AuditConfig, display_root: Path
) -> tuple[list[SourceFile], list[Finding]]:
    """Python files under `paths`. Directories are walked without following symlinks (no loops);
    an explicitly named file is always audited. Paths that do not exist become error entries."""
    root = Path(config.root)
    found: dict[str, SourceFile] = {}
    problems: list[Finding] = []

    def add(full: Path) -> None:
        matched = _rel(full, root)
        if config.tests == "exclude" and config.is_test(matched):
            return
        shown = _rel(full, display_root)
        found.setdefault(shown, SourceFile(str(full), shown, matched))

    for path in paths:
        shown_arg = _rel(path, display_root)
        if path.is_symlink() and not path.exists():
            problems.append(parse_error(shown_arg, "broken symlink or symlink loop"))
            continue
        if path.is_file():
            add(path)
            continue
        if not path.is_dir():
            problems.append(parse_error(shown_arg, "no such file or directory"))
            continue
        walk = os.walk(path, onerror=lambda e: problems.append(_walk_error(e, display_root)))
        for folder, dirs, files in walk:
            dirs.sort()
            dirs[:] = [
                d for d in dirs if not config.is_excluded(_rel(Path(folder) / d, root) + "/x")
            ]
            for name in sorted(files):
                full = Path(folder) / name
                if name.endswith(".py") and config.is_included(_rel(full, root)):
                    add(full)
    return [found[k] for k in sorted(found)], problems


def _walk_error(exc: OSError, root: Path) -> Finding:
    where = _rel(Path(exc.filename), root) if exc.filename else "."
    return parse_error(where, f"cannot list directory: {exc.strerror or exc}")


def _rel(path: Path, root: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return absolute.as_posix()


def read_source(path: Path, max_bytes: int) -> tuple[str | None, bytes, str]:
    """(text, raw bytes, error). Honours PEP 263 coding lines; refuses binaries and huge files."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, b"", f"file too large ({size:,} bytes > max-file-bytes {max_bytes:,})"
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if getattr(exc, "errno", None) == 40:  # ELOOP
            reason = "symlink loop"
        return None, b"", f"cannot read file: {reason}"
    if b"\x00" in raw:
        return None, raw, "binary file (contains NUL bytes), not Python source"
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(raw).readline)
    except SyntaxError as exc:
        if re.search(rb"coding[:=]", b"\n".join(raw.splitlines()[:2])):
            return None, raw, f"bad encoding declaration: {exc}"
        return None, raw, "not valid utf-8 text; declare the encoding with a PEP 263 coding line"
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        return (
            None,
            raw,
            f"not valid {encoding} text ({exc.__class__.__name__}: {exc}); declare the encoding with a PEP 263 coding line",
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, raw, ""


def audit_file(source: SourceFile, config: AuditConfig, key: str = "") -> FileOutcome:
    """Scan one file; never raises (worker processes must not die on one bad file)."""
    rel = source.shown
    outcome = FileOutcome(rel=rel, key=key)
    text, _raw, error = read_source(Path(source.path), config.max_file_bytes)
    if text is None:
        outcome.findings.append(parse_error(rel, error))
        return outcome
    try:
        scanned = scan_source(
            text, rel, config, is_test=config.is_test(source.matched), match_path=source.matched
        )
    except cst.ParserSyntaxError as exc:
        hint = " (Python 2 code?)" if _looks_like_python2(text) else ""
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid syntax"
        outcome.findings.append(
            parse_error(
                rel,
                f"syntax error at line {exc.raw_line}, column {exc.raw_column}: {message}{hint}",
            )
        )
        return outcome
    except RecursionError:
        outcome.findings.append(parse_error(rel, "code nested too deeply to parse"))
        return outcome
    except Exception as exc:  # noqa: BLE001 - a scanner bug on one file must not stop the run
        outcome.findings.append(
            parse_error(rel, f"internal error while scanning: {exc.__class__.__name__}: {exc}")
        )
        return outcome
    outcome.findings = scanned.findings
    outcome.suppressed = scanned.suppressed
    return outcome


def _looks_like_python2(text: str) -> bool:
    return bool(
        re.search(r"^\s*(print\s+[^(=\s]|exec\s+\"|except\s+\w+\s*,\s*\w+\s*:)", text, re.MULTILINE)
    )


def _worker(batch: list[tuple[SourceFile, str]], config: AuditConfig) -> list[FileOutcome]:
    return [audit_file(source, config, key) for source, key in batch]


def _auditor_digest() -> str:
    """Hash of the auditor's own rules and vocabulary: an edited rule invalidates the cache."""
    global _DIGEST
    if _DIGEST is None:
        folder = Path(__file__).parent
        h = hashlib.sha256()
        for path in sorted([*folder.glob("*.py"), *folder.glob("*.toml")]):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _DIGEST = h.hexdigest()[:16]
    return _DIGEST


_DIGEST: str | None = None


class Cache:
    """Content-hash cache like ruff's: an entry is valid for the same bytes, qctl version and config."""

    def __init__(self, folder: Path | None, config: AuditConfig) -> None:
        self.path = folder / CACHE_FILE if folder else None
        self.salt = f"{qctl_version()}|{_auditor_digest()}|{config.digest()}"
        self.entries: dict[str, dict] = {}
        self.dirty = False
        if self.path and self.path.is_file():
            try:
                data = json.loads(self.path.read_text("utf-8"))
                if data.get("salt") == self.salt:
                    self.entries = data.get("entries", {})
            except (OSError, ValueError):
                self.entries = {}  # a corrupt cache is just a cold cache

    def key(self, rel: str, path: Path) -> str:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return ""
        return hashlib.sha256(f"{self.salt}|{rel}|{digest}".encode()).hexdigest()

    def get(self, rel: str, key: str) -> FileOutcome | None:
        entry = self.entries.get(rel)
        if not key or not entry or entry.get("key") != key:
            return None
        return FileOutcome(
            rel=rel,
            key=key,
            findings=[Finding.from_dict(f) for f in entry["findings"]],
            suppressed=entry.get("suppressed", 0),
        )

    def put(self, outcome: FileOutcome) -> None:
        if not outcome.key:
            return
        self.entries[outcome.rel] = {
            "key": outcome.key,
            "findings": [f.to_dict() for f in outcome.findings],
            "suppressed": outcome.suppressed,
        }
        self.dirty = True

    def save(self) -> None:
        if not self.path or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            gitignore = self.path.parent / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n", "utf-8")
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".audit-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"salt": self.salt, "entries": self.entries}, fh)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only tree still gets its audit, just without a warm cache next time


def run_audit(
    paths: Iterable[Path],
    config: AuditConfig,
    *,
    display_root: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    baseline: Baseline | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit `paths` under `config`; the library entry point behind `qctl audit`.

    Findings name files relative to `display_root` (default: the current folder), as SARIF and
    baselines expect; config globs match paths relative to the config file's folder.
    """
    shown_root = (display_root or Path.cwd()).resolve()
    files, problems = discover(paths, config, shown_root)
    cache = Cache(cache_dir if use_cache else None, config)
    outcomes: list[FileOutcome] = []
    todo: list[tuple[SourceFile, str]] = []
    for source in files:
        key = cache.key(source.shown, Path(source.path)) if use_cache else ""
        hit = cache.get(source.shown, key)
        if hit is not None:
            outcomes.append(hit)
        else:
            todo.append((source, key))
    from_cache = done = len(outcomes)
    total = len(files)
    if progress:
        progress(done, total)
    for outcome in _scan_all(todo, config, jobs):
        outcomes.append(outcome)
        cache.put(outcome)
        done += 1
        if progress:
            progress(done, total)
    cache.save()

    findings = [f for o in outcomes for f in o.findings] + problems
    result = AuditResult(
        findings=sorted(findings, key=_order),
        files_scanned=total,
        files_from_cache=from_cache,
        suppressed=sum(o.suppressed for o in outcomes),
        root=str(shown_root),
    )
    if baseline is not None:
        kept = [f for f in findings if f.is_parse_error]
        new, matched = baseline.split([f for f in findings if not f.is_parse_error])
        result.findings = sorted(kept + new, key=_order)
        result.baselined = matched
    return result


def _order(finding: Finding) -> tuple:
    return (finding.is_test, finding.path, finding.line, finding.column, finding.rule_id)


def _scan_all(
    todo: list[tuple[SourceFile, str]], config: AuditConfig, jobs: int | None
) -> Iterator[FileOutcome]:
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(todo) < PARALLEL_THRESHOLD:
        for source, key in todo:
            yield audit_file(source, config, key)
        return
    size = max(4, min(64, len(todo) // (workers * 8) or 1))
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for batch_result in pool.map(_worker, batches, [config] * len(batches)):
            yield from batch_result
