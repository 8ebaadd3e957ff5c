"""`[tool.qctl.audit]` (pyproject.toml) or `[audit]` (qctl.toml): what to scan and how to judge it."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from audit.finding import Category, Severity

DEFAULT_EXCLUDE = (
    ".git/**", ".hg/**", ".venv/**", "venv/**", "env/**", "**/.venv/**", "**/node_modules/**",
    "**/__pycache__/**", "**/site-packages/**", "build/**", "dist/**", ".tox/**", ".nox/**",
    ".qctl_cache/**", "**/.mypy_cache/**", "**/.ruff_cache/**",
)  # fmt: skip
DEFAULT_TEST_PATHS = (
    "tests/**",
    "test/**",
    "**/tests/**",
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
)
DEFAULT_SEVERITIES = {
    Category.LEVERAGE: Severity.WARNING,
    Category.POSITION_SIZING: Severity.WARNING,
    Category.SYMBOL_SELECTION: Severity.WARNING,
    Category.HARVEST: Severity.WARNING,
    Category.KILL_SCORE: Severity.WARNING,
    Category.STOP_LOSS_TAKE_PROFIT: Severity.WARNING,
    Category.SAFETY_LIMIT: Severity.INFO,
    Category.SECRET: Severity.ERROR,
    Category.OTHER: Severity.INFO,
}
# Names that usually declare a hard safety limit. A project names its own in config.
DEFAULT_SAFETY_LIMIT_NAMES = (
    "*HARD_CAP*", "*HARD_LIMIT*", "HARD_MAX_*", "HARD_MIN_*", "MIN_MARGIN_RATIO*",
    "MAX_TOTAL_EXPOSURE*", "MAX_POSITION_SIZE_PCT", "MAX_POSITION_PCT",
)  # fmt: skip
TEST_MODES = ("separate", "exclude", "include")
CONFIG_FILES = ("qctl.toml", "pyproject.toml")


class ConfigError(Exception):
    """A configuration the user must fix; shown as one line, exit code 2."""


@dataclass(frozen=True)
class AuditConfig:
    root: str = "."
    source: str = ""
    include: tuple[str, ...] = ("**/*.py",)
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    per_path_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    severities: Mapping[Category, Severity] = field(
        default_factory=lambda: dict(DEFAULT_SEVERITIES)
    )
    vocabulary: Mapping[str, object] = field(default_factory=dict)
    safety_limit_names: tuple[str, ...] = DEFAULT_SAFETY_LIMIT_NAMES
    test_paths: tuple[str, ...] = DEFAULT_TEST_PATHS
    tests: str = "separate"
    max_file_bytes: int = 5_000_000
    # Per-file budgets: a file over one is reported as "too large/slow to audit", never a hang.
    max_file_tokens: int = 200_000  # checked before parsing (libcst needs ~1 KB of memory a token)
    max_file_seconds: float = 60.0  # wall time to scan one file
    max_file_mb: int = 2048  # memory a worker process may add while scanning one file
    # The owner's hard limits, as {field: (bound, "max"|"min", is_percent)}. Given by the caller (the
    # qctl CLI passes engine.limits.SafetyLimits); the auditor itself knows no trading number.
    reference_limits: Mapping[str, tuple[float, str, bool]] = field(default_factory=dict)

    def digest(self) -> str:
        """Hash of everything that changes results: a cache entry is valid only under the same config."""
        data = asdict(self)
        data.pop("root")
        data.pop("source")
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def is_excluded(self, rel: str) -> bool:
        return matches_any(rel, DEFAULT_EXCLUDE + self.exclude + self.extend_exclude)

    def is_included(self, rel: str) -> bool:
        return matches_any(rel, self.include) and not self.is_excluded(rel)

    def is_test(self, rel: str) -> bool:
        return matches_any(rel, self.test_paths)

    def ignored_here(self, rel: str) -> set[str]:
        """Categories and rule ids switched off for this path (`*` for everything)."""
        out: set[str] = set()
        for pattern, what in self.per_path_ignores.items():
            if matches_any(rel, (pattern,)):
                out.update(what)
        return out

    def is_safety_limit(self, name: str, owner: str = "") -> bool:
        """Whether `name` (a field of class `owner`, if any) is declared a hard safety limit.

        Patterns are case-insensitive globs on the name, or on `Class.name` when they hold a dot.
        """
        qualified = f"{owner}.{name}".upper() if owner else ""
        for pattern in self.safety_limit_names:
            target = qualified if "." in pattern else name.upper()
            if target and fnmatch.fnmatchcase(target, pattern.upper()):
                return True
        return False


def matches_any(rel: str, patterns: tuple[str, ...]) -> bool:
    """Whether a POSIX relative path matches any glob (`**` crosses folders, `*` does not)."""
    for pattern in patterns:
        if _glob(rel, pattern):
            return True
        # `dir/**` also matches files directly inside and `**/x` matches at the top
        if pattern.startswith("**/") and matches_any(rel, (pattern[3:],)):
            return True
    return False


def _glob(rel: str, pattern: str) -> bool:
    """`**` crosses directories, `*` does not (Python < 3.13 has no PurePath.full_match)."""
    return _glob_regex(pattern).fullmatch(rel) is not None


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex)


def find_config_file(start: Path) -> Path | None:
    """The nearest qctl.toml, or pyproject.toml with a [tool.qctl.audit] table, at or above `start`."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else list(start.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if not candidate.is_file():
                continue
            if name == "qctl.toml":
                return candidate
            try:
                data = tomllib.loads(candidate.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if "audit" in data.get("tool", {}).get("qctl", {}):
                return candidate
    return None


def load_config(path: Path | None, root: Path | None = None) -> AuditConfig:
    """Read a config file (or the defaults when `path` is None); relative globs are from its folder."""
    if path is None:
        return AuditConfig(root=str((root or Path.cwd()).resolve()))
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("qctl", {}).get("audit", {})
    else:
        table = data.get("audit", data.get("tool", {}).get("qctl", {}).get("audit", {}))
    return config_from_table(table, root=path.parent.resolve(), source=str(path))


def config_from_table(table: Mapping[str, object], root: Path, source: str = "") -> AuditConfig:
    where = source or "config"
    known = {
        "include", "exclude", "extend-exclude", "per-path-ignores", "severity", "vocabulary",
        "safety-limits", "test-paths", "tests", "max-file-bytes", "max-file-tokens",
        "max-file-seconds", "max-file-mb",
    }  # fmt: skip
    unknown = set(table) - known - {k.replace("-", "_") for k in known}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) in [tool.qctl.audit]: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )

    def get(key: str, default: object) -> object:
        return table.get(key, table.get(key.replace("-", "_"), default))

    def str_list(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: `{key}` must be a list of strings")
        return tuple(value)

    severities = dict(DEFAULT_SEVERITIES)
    raw_sev = get("severity", {})
    if not isinstance(raw_sev, Mapping):
        raise ConfigError(f"{where}: `severity` must be a table of category = severity")
    for cat, sev in raw_sev.items():
        try:
            severities[Category(cat)] = Severity(sev)
        except ValueError:
            raise ConfigError(
                f"{where}: severity.{cat} = {sev!r}: categories are {', '.join(c.value for c in Category)};"
                f" severities are info, warning, error"
            ) from None

    ppi = get("per-path-ignores", {})
    if not isinstance(ppi, Mapping):
        raise ConfigError(f"{where}: `per-path-ignores` must be a table of glob = [categories]")
    per_path = {}
    for pattern, what in ppi.items():
        items = [what] if isinstance(what, str) else what
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(
                f"{where}: per-path-ignores.{pattern!r} must be a list of categories or rule ids"
            )
        per_path[pattern] = tuple(items)

    vocab = get("vocabulary", {})
    if not isinstance(vocab, Mapping):
        raise ConfigError(f"{where}: `vocabulary` must be a table")
    try:
        from audit.vocabulary import Vocabulary

        Vocabulary.load(vocab)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None

    tests = get("tests", "separate")
    if tests not in TEST_MODES:
        raise ConfigError(f"{where}: `tests` must be one of {', '.join(TEST_MODES)}, not {tests!r}")
    max_bytes = get("max-file-bytes", 5_000_000)
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"{where}: `max-file-bytes` must be a positive integer")
    budgets = {}
    for key, kind in (("max-file-tokens", int), ("max-file-seconds", float), ("max-file-mb", int)):
        value = get(key, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: `{key}` must be a positive number")
        if kind is int and not isinstance(value, int):
            raise ConfigError(f"{where}: `{key}` must be a positive integer")
        budgets[key.replace("-", "_")] = kind(value)

    return AuditConfig(
        root=str(root),
        source=source,
        include=str_list("include", ("**/*.py",)),
        exclude=str_list("exclude", ()),
        extend_exclude=str_list("extend-exclude", ()),
        per_path_ignores=per_path,
        severities=severities,
        vocabulary=dict(vocab),
        safety_limit_names=DEFAULT_SAFETY_LIMIT_NAMES + str_list("safety-limits", ()),
        test_paths=str_list("test-paths", DEFAULT_TEST_PATHS),
        tests=str(tests),
        max_file_bytes=max_bytes,
        **budgets,
    )
