"""`[tool.qctl.migrate]` (pyproject.toml) or `[migrate]` (qctl.toml) of the repository migrated.

Only the repository's own folder is read (no search upwards): a migration targets one repository,
and a config file of an enclosing project must not decide where its accessor goes.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from audit.config import AuditConfig, ConfigError, config_from_table
from migrations.errors import MigrateError
from migrations.wrap import DEFAULT_LINE_LENGTH, line_length_of

SYMBOL_FORMATS = ("auto", "BASE-QUOTE", "BASEQUOTE", "BASE/QUOTE", "BASE/QUOTE:QUOTE")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
KNOWN_KEYS = (
    "accessor-path",
    "accessor-module",
    "policy-file",
    "symbol-format",
    "exclude",
    "line-length",
)


@dataclass(frozen=True)
class MigrateConfig:
    """Where the accessor goes, how code imports it, where it finds the policy file."""

    root: Path
    accessor_path: str = "qctl_policy.py"
    accessor_module: str = "qctl_policy"
    policy_file: str = "qctl_policy.json"
    symbol_format: str = "auto"
    exclude: tuple[str, ...] = ()
    source: str = ""
    line_length: int = DEFAULT_LINE_LENGTH  # migrated lines stay inside it (migrations.wrap)

    @property
    def accessor_file(self) -> Path:
        return self.root / self.accessor_path


def _tables(root: Path) -> tuple[dict, dict, str]:
    """(migrate table, audit table, source file) from the repository's qctl.toml or pyproject.toml."""
    for name in ("qctl.toml", "pyproject.toml"):
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise MigrateError(f"{path}: cannot read config: {exc}") from None
        tool = data.get("tool", {}).get("qctl", {})
        if name == "qctl.toml":
            return (
                data.get("migrate", tool.get("migrate", {})),
                data.get("audit", tool.get("audit", {})),
                str(path),
            )
        if "migrate" in tool or "audit" in tool:
            return tool.get("migrate", {}), tool.get("audit", {}), str(path)
    return {}, {}, ""


def load_migrate_config(root: Path) -> MigrateConfig:
    """The repository's migrate settings; unknown keys and bad values are one-line errors."""
    root = root.resolve()
    if not root.is_dir():
        raise MigrateError(f"{root} is not a directory")
    table, _, source = _tables(root)
    if not isinstance(table, Mapping):
        raise MigrateError(f"{source}: [migrate] must be a table")
    unknown = sorted(set(table) - set(KNOWN_KEYS) - {k.replace("-", "_") for k in KNOWN_KEYS})
    if unknown:
        raise MigrateError(
            f"{source}: unknown key(s) in [tool.qctl.migrate]: {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_KEYS)})"
        )

    def get(key: str, default: object) -> object:
        return table.get(key, table.get(key.replace("-", "_"), default))

    path = get("accessor-path", "qctl_policy.py")
    if not isinstance(path, str) or not path.endswith(".py") or PurePosixPath(path).is_absolute():
        raise MigrateError(f"{source}: accessor-path must be a relative path to a .py file")
    if ".." in PurePosixPath(path).parts:
        raise MigrateError(f"{source}: accessor-path must stay inside the repository")
    default_module = PurePosixPath(path).with_suffix("").as_posix().replace("/", ".")
    module = get("accessor-module", default_module)
    if not isinstance(module, str) or not _MODULE_RE.match(module):
        raise MigrateError(f"{source}: accessor-module must be a dotted Python module name")
    policy_file = get("policy-file", "qctl_policy.json")
    if not isinstance(policy_file, str) or not policy_file:
        raise MigrateError(f"{source}: policy-file must be a path")
    fmt = get("symbol-format", "auto")
    if fmt not in SYMBOL_FORMATS:
        raise MigrateError(f"{source}: symbol-format must be one of {', '.join(SYMBOL_FORMATS)}")
    exclude = get("exclude", [])
    if isinstance(exclude, str):
        exclude = [exclude]
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise MigrateError(f"{source}: exclude must be a list of globs")
    width = get("line-length", None)
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise MigrateError(f"{source}: line-length must be a positive whole number of columns")
    return MigrateConfig(
        root=root,
        accessor_path=PurePosixPath(path).as_posix(),
        accessor_module=module,
        policy_file=policy_file,
        symbol_format=str(fmt),
        exclude=tuple(exclude),
        source=source,
        line_length=line_length_of(root, width),
    )


def load_audit_config(root: Path) -> AuditConfig:
    """The repository's audit settings (findings select what the phases touch)."""
    _, table, source = _tables(root.resolve())
    try:
        return config_from_table(table, root=root.resolve(), source=source)
    except ConfigError as exc:
        raise MigrateError(str(exc)) from None
