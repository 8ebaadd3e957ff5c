"""Run the scan over a tree: find files, read them safely, use the cache, fan out to processes.

Bad input never stops a run: every file that cannot be read or parsed becomes a `parse-error`
finding with the reason, and the rest of the tree is still audited. Each file has a budget
(tokens before parsing, seconds and memory while scanning); a file over it, a file nested deeper
than Python's own parser accepts (libcst's native parser would overflow its stack on it), and a
worker process that dies are reported as entries too, never as the end of the run.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import signal
import tempfile
import threading
import time
import tokenize
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from audit.baseline import Baseline
from audit.config import AuditConfig
from audit.finding import AuditResult, Finding, parse_error

if TYPE_CHECKING:
    from audit.prefilter import Prefilter

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
    skipped: bool = False  # the pre-filter showed it cannot hold a finding: never parsed
    exports: list[Finding] = field(default_factory=list)  # see audit.imports
    imports: list[str] = field(default_factory=list)
    shown: list[Finding] = field(default_factory=list)  # see audit.imports.keep_referenced
    refers: list[str] = field(default_factory=list)  # see audit.imports.references


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
    absolute = os.path.abspath(path)
    if os.sep == "/":  # plain string work: pathlib's relative_to was a third of a warm run
        base = str(root)
        if absolute == base:
            return "."
        prefix = base if base.endswith("/") else base + "/"
        return absolute[len(prefix) :] if absolute.startswith(prefix) else absolute
    try:
        return Path(absolute).relative_to(root).as_posix()
    except ValueError:
        return Path(absolute).as_posix()


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


def audit_file(
    source: SourceFile, config: AuditConfig, key: str = "", prefilter: Prefilter | None = None
) -> FileOutcome:
    """Scan one file; never raises (worker processes must not die on one bad file).

    With a `prefilter`, a file that parses and cannot hold a finding is not handed to libcst.
    """
    import libcst as cst

    from audit.imports import references
    from audit.scan import scan_source

    rel = source.shown
    outcome = FileOutcome(rel=rel, key=key)
    text, _raw, error = read_source(Path(source.path), config.max_file_bytes)
    if text is None:
        outcome.findings.append(parse_error(rel, error))
        return outcome
    problem, parses = precheck(text, config)
    if problem:
        outcome.findings.append(parse_error(rel, problem))
        return outcome
    outcome.refers = references(text, rel)
    where = f"{source.shown} {source.matched}"  # path words count as names
    if parses and prefilter is not None and not prefilter.may_hold_findings(text, where):
        outcome.skipped = True
        return outcome
    try:
        with _deadline(config.max_file_seconds):
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
        outcome.findings.append(
            parse_error(rel, f"{NESTING_TOO_DEEP}: the scanner ran out of stack")
        )
        return outcome
    except _OverBudget:
        outcome.findings.append(
            parse_error(
                rel,
                f"{TOO_LARGE}: still scanning after {config.max_file_seconds:g} s "
                "(the max-file-seconds budget)",
            )
        )
        return outcome
    except MemoryError:
        outcome.findings.append(parse_error(rel, f"{TOO_LARGE}: ran out of memory while scanning"))
        return outcome
    except Exception as exc:  # noqa: BLE001 - a scanner bug on one file must not stop the run
        outcome.findings.append(
            parse_error(rel, f"internal error while scanning: {exc.__class__.__name__}: {exc}")
        )
        return outcome
    outcome.findings = scanned.findings
    outcome.suppressed = scanned.suppressed
    outcome.exports = scanned.exports
    outcome.imports = scanned.imports
    outcome.shown = scanned.shown
    return outcome


NESTING_TOO_DEEP = "nesting too deep"
TOO_LARGE = "too large/slow to audit"
# CPython refuses more than 200 nested brackets; libcst's native parser crashes (SIGSEGV) a few
# thousand levels down, so anything CPython refuses is refused here before libcst sees it.
MAX_BRACKET_DEPTH = 200
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NESTING_SYNTAX = ("too many nested parentheses", "too many levels of indentation", "too complex")


def precheck(text: str, config: AuditConfig) -> tuple[str, bool]:
    """(reason this file must not be parsed, or "", whether CPython parses it).

    Cheap and in C: a token count against the per-file budget, then `ast.parse`, which refuses
    deep nesting with an error where libcst's native parser would overflow the stack.
    """
    if len(text) > config.max_file_tokens:  # each token is at least one character
        tokens = sum(1 for _ in _TOKEN.finditer(text))
        if tokens > config.max_file_tokens:
            return (
                f"{TOO_LARGE}: {tokens:,} tokens, over the budget of "
                f"{config.max_file_tokens:,} per file (max-file-tokens)",
                False,
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not ours to report
            ast.parse(text)
    except (RecursionError, MemoryError):
        return (
            f"{NESTING_TOO_DEEP}: an expression nested deeper than Python's parser accepts",
            False,
        )
    except SyntaxError as exc:
        depth = _bracket_depth(text)
        if depth > MAX_BRACKET_DEPTH or any(m in str(exc.msg) for m in _NESTING_SYNTAX):
            figure = f"{depth:,} nested brackets" if depth > MAX_BRACKET_DEPTH else str(exc.msg)
            return f"{NESTING_TOO_DEEP}: {figure} (Python accepts {MAX_BRACKET_DEPTH})", False
        return "", False  # libcst reports the syntax error (or parses newer syntax)
    except ValueError:
        return "", False
    return "", True


def _bracket_depth(text: str) -> int:
    """Deepest bracket nesting, counting brackets inside strings too (an upper bound)."""
    depth = deepest = 0
    for char in re.findall(r"[()\[\]{}]", text):
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


class _OverBudget(BaseException):
    """Raised by the per-file alarm; a BaseException so that no `except Exception` swallows it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the scan of one file after `seconds` (main thread on POSIX only; else no limit)."""
    usable = (
        seconds > 0
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _expire(_signum: int, _frame: object) -> None:
        raise _OverBudget

    previous = signal.signal(signal.SIGALRM, _expire)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # give an outer timer (a test runner's) its remaining time back
            left = max(outer_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _looks_like_python2(text: str) -> bool:
    return bool(
        re.search(r"^\s*(print\s+[^(=\s]|exec\s+\"|except\s+\w+\s*,\s*\w+\s*:)", text, re.MULTILINE)
    )


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
            exports=[Finding.from_dict(f) for f in entry.get("exports", ())],
            imports=entry.get("imports", []),
            shown=[Finding.from_dict(f) for f in entry.get("shown", ())],
            refers=entry.get("refers", []),
        )

    def put(self, outcome: FileOutcome) -> None:
        if not outcome.key:
            return
        self.entries[outcome.rel] = {
            "key": outcome.key,
            "findings": [f.to_dict() for f in outcome.findings],
            "suppressed": outcome.suppressed,
        }
        if outcome.exports:
            self.entries[outcome.rel]["exports"] = [f.to_dict() for f in outcome.exports]
        if outcome.imports:
            self.entries[outcome.rel]["imports"] = outcome.imports
        if outcome.shown:
            self.entries[outcome.rel]["shown"] = [f.to_dict() for f in outcome.shown]
        if outcome.refers:
            self.entries[outcome.rel]["refers"] = outcome.refers
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
    if any(o.exports for o in outcomes) and any(o.imports for o in outcomes):
        from audit.imports import join

        findings += join(outcomes)
    if any(o.shown for o in outcomes):
        from audit.imports import keep_referenced

        findings += keep_referenced(outcomes)
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
    if not todo:
        return
    from audit.prefilter import Prefilter

    prefilter = Prefilter(config)
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(todo) < PARALLEL_THRESHOLD:
        for source, key in todo:
            yield audit_file(source, config, key, prefilter)
        return
    yield from _WorkerPool(min(workers, len(todo)), config, prefilter).run(todo)


# A worker stuck in native code (no Python bytecode runs, so its own alarm cannot fire) is killed
# this long after its per-file budget.
STUCK_WORKER_GRACE_SECONDS = 5.0


def _serve(conn, config: AuditConfig, prefilter: Prefilter) -> None:  # noqa: ANN001 - a Connection
    """A worker process: audit one file per message until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_memory(config.max_file_mb)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        source, key = task
        conn.send(audit_file(source, config, key, prefilter))


def _limit_memory(megabytes: int) -> None:
    """Cap this worker's address space at what it uses now plus the per-file memory budget."""
    if megabytes <= 0:
        return
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + megabytes * 1024 * 1024
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        pass  # no /proc or no RLIMIT_AS: the token budget still bounds memory


class _Worker:
    def __init__(self, ctx, config: AuditConfig, prefilter: Prefilter) -> None:  # noqa: ANN001
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, config, prefilter), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[SourceFile, str] | None = None
        self.started = 0.0

    def give(self, task: tuple[SourceFile, str]) -> None:
        self.task = task
        self.started = time.monotonic()
        self.conn.send(task)

    def stop(self) -> None:
        try:
            if self.process.is_alive() and self.task is None:
                self.conn.send(None)
                self.process.join(timeout=1)
        except (OSError, ValueError):
            pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class _WorkerPool:
    """Worker processes fed one file at a time, watched by the parent.

    A worker that dies (a crash in native code, the memory cap) or outlives its per-file budget is
    replaced; its file becomes a `parse-error` entry saying so and the rest of the tree goes on.
    """

    def __init__(self, size: int, config: AuditConfig, prefilter: Prefilter) -> None:
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        self.ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.config = config
        self.prefilter = prefilter
        self.size = size

    def _spawn(self) -> _Worker:
        return _Worker(self.ctx, self.config, self.prefilter)

    def run(self, todo: list[tuple[SourceFile, str]]) -> Iterator[FileOutcome]:
        from multiprocessing.connection import wait

        pending = deque(todo)
        pool = [self._spawn() for _ in range(self.size)]
        budget = self.config.max_file_seconds
        try:
            while True:
                for index, worker in enumerate(pool):
                    if worker.task is None and pending:
                        try:
                            worker.give(pending[0])
                        except (OSError, ValueError):  # died between two files
                            worker.stop()
                            pool[index] = self._spawn()
                            continue
                        pending.popleft()
                busy = [w for w in pool if w.task is not None]
                if not busy:
                    return
                timeout = None
                if budget > 0:
                    soonest = min(w.started for w in busy) + budget + STUCK_WORKER_GRACE_SECONDS
                    timeout = max(0.0, soonest - time.monotonic())
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
                for index, worker in enumerate(pool):
                    if worker.task is None:
                        continue
                    outcome = self._collect(worker, budget)
                    if outcome is None:
                        continue
                    yield outcome
                    if worker.task is not None:  # the worker is gone: replace it
                        worker.task = None
                        worker.stop()
                        pool[index] = self._spawn()
        finally:
            for worker in pool:
                worker.stop()

    def _collect(self, worker: _Worker, budget: float) -> FileOutcome | None:
        """The worker's outcome if it has one, an entry if it died or overran; else None."""
        source, key = worker.task  # type: ignore[misc]
        try:
            if worker.conn.poll():
                outcome = worker.conn.recv()
                worker.task = None
                return outcome
        except (EOFError, OSError):
            pass
        if not worker.process.is_alive():
            worker.process.join(timeout=1)
            return FileOutcome(
                rel=source.shown,
                key="",  # not cached: a crash may depend on the machine, not the file
                findings=[parse_error(source.shown, _death_reason(worker.process.exitcode))],
            )
        overran = time.monotonic() - worker.started
        if budget > 0 and overran > budget + STUCK_WORKER_GRACE_SECONDS:
            worker.process.kill()
            reason = f"{TOO_LARGE}: still scanning after {overran:.0f} s (max-file-seconds is {budget:g})"
            return FileOutcome(
                rel=source.shown, key="", findings=[parse_error(source.shown, reason)]
            )
        return None


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = signal.Signals(-exitcode).name
        except ValueError:
            how = f"signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    return f"the audit worker process died ({how}) while scanning this file; the rest was audited"
