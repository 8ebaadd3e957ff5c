"""The published policy file (`qctl.policy/v1`): build, write, read and validate it.

The file is the contract between whatever decides (AIPolicy, StaticPolicy, a person) and code
that only looks values up (migrated legacy code through the stdlib accessor `qctl migrate init`
writes, `qctl verify`). Format: `.notes/policy_contract.md`; JSON Schema: `policy_schema.json`
next to this module. This module is the reference reader: the accessor must agree with it.

Fail closed everywhere: a missing, unreadable, malformed, tampered, stale or out-of-bounds file
is refused as a whole (`PolicyFileError`), and a symbol or value that is absent is no decision.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.policy import Policy, safe_decide
from engine.domain import (
    PERCENT,
    AutonomyZone,
    Bars,
    Decision,
    HarvestLadder,
    LimitsError,
    MarketSnapshot,
    PolicyKey,
    Portfolio,
    SafetyLimits,
    SkipReason,
)

SCHEMA_ID = "qctl.policy/v1"
SCHEMA_PATH = Path(__file__).with_name("policy_schema.json")
DEFAULT_POLICY_FILE = Path("qctl_policy.json")
ENV_VAR = "QCTL_POLICY_FILE"
SOURCE_KINDS = ("ai", "static", "manual")
MS_PER_S = 1000

# per-symbol keys: every PolicyKey except the universe ones, in PolicyKey order
SYMBOL_KEYS: tuple[str, ...] = tuple(
    str(k) for k in PolicyKey if k not in (PolicyKey.UNIVERSE_SYMBOLS, PolicyKey.UNIVERSE_COUNT)
)
HARVEST_KEYS = ("harvest_t1_r", "harvest_t2_r", "harvest_t3_r", "harvest_lock_r")
LADDER_KEYS = ("harvest_t1_r", "harvest_t2_r", "harvest_t3_r")
CLOSE_FRAC_KEYS = ("harvest_t1_close_frac", "harvest_t2_close_frac")
# what FilePolicy needs for an entry (the ladder is optional, but complete when present)
REQUIRED_KEYS = (
    "leverage",
    "size_pct",
    "stop_loss_pct",
    "kill_threshold",
    "kill_reduce_threshold",
    "kill_reduce_frac",
    "max_hold_sec",
)
TOP_KEYS = (
    "schema",
    "version",
    "created_at",
    "valid_until",
    "hash",
    "source",
    "limits",
    "zone",
    "universe",
    "symbols",
)
LIMIT_KEYS = tuple(SafetyLimits().as_dict())
ZONE_KEYS = (
    "min_leverage",
    "max_leverage",
    "max_size_pct",
    "min_harvest_r",
    "max_harvest_r",
    "min_kill_threshold",
    "max_kill_threshold",
)
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")


# ---------------------------------------------------------------------------------------------
# errors


class PolicyFileError(Exception):
    """The policy file cannot be used; `skip_reason` is what a caller journals when it skips."""

    skip_reason: SkipReason = SkipReason.MODEL_CORRUPT
    kind = "corrupt"


class PolicyFileMissing(PolicyFileError):
    """The file is not there (or is not a file)."""

    skip_reason = SkipReason.MODEL_MISSING
    kind = "missing"


class PolicyFileCorrupt(PolicyFileError):
    """Unreadable, not JSON, not the schema, or its hash does not match its content."""

    skip_reason = SkipReason.MODEL_CORRUPT
    kind = "corrupt"


class PolicyFileStale(PolicyFileError):
    """Past its `valid_until`."""

    skip_reason = SkipReason.MODEL_STALE
    kind = "stale"


class PolicyFileOutOfBounds(PolicyFileError):
    """A value, limit or zone bound outside the hard safety limits or the autonomy zone."""

    skip_reason = SkipReason.OUT_OF_ZONE
    kind = "bounds"


class PolicyBuildError(ValueError):
    """A policy document cannot be built (no snapshot, bad validity...); shown as one line."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One reason a document is refused: kind (schema|hash|stale|bounds), where, and why."""

    kind: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


_ERROR_FOR_KIND: dict[str, type[PolicyFileError]] = {
    "schema": PolicyFileCorrupt,
    "hash": PolicyFileCorrupt,
    "stale": PolicyFileStale,
    "bounds": PolicyFileOutOfBounds,
}


# ---------------------------------------------------------------------------------------------
# time, symbols, hashing


def iso_utc(ms: int) -> str:
    """Epoch milliseconds -> `2026-11-25T13:40:00Z` (seconds precision, the file's format)."""
    return datetime.fromtimestamp(ms // MS_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> int:
    """`2026-11-25T13:40:00Z` -> epoch milliseconds; ValueError for anything else."""
    if not isinstance(text, str) or not _TIME_RE.match(text):
        raise ValueError(f"{text!r} is not a UTC time like 2026-11-25T13:40:00Z")
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(moment.timestamp()) * MS_PER_S


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * MS_PER_S)


def symbol_key(symbol: str) -> str:
    """How readers match symbols: `BTC-USDT`, `BTCUSDT`, `btc/usdt:USDT` all give `BTCUSDT`."""
    s = str(symbol).strip().upper().split(":", 1)[0]
    for sep in ("-", "/", "_"):
        s = s.replace(sep, "")
    return s


def file_symbol(symbol: str) -> str:
    """The spelling written in the file: `BASE-QUOTE` (`BTC/USDT:USDT`, `BTCUSDT` -> `BTC-USDT`).

    A name whose quote cannot be told (`BTC`) is returned as it is, and never written: the
    quote is not guessed.
    """
    from engine.core.bars import DataError, resolve_symbol

    try:
        name = resolve_symbol(symbol)
    except DataError:
        return str(symbol)
    return name if symbol_key(name) == symbol_key(symbol) else str(symbol).strip().upper()


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN: the bytes the hash is taken over."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def document_hash(document: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the document without its `hash` field."""
    body = {k: v for k, v in document.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _content_id(document: Mapping[str, Any]) -> str:
    """8 hex chars naming the decisions (same values -> same id, whenever published)."""
    body = {
        k: v
        for k, v in document.items()
        if k not in ("hash", "version", "created_at", "valid_until")
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()[:8]


def seal(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with `version` and `hash` (re)computed: after building or hand-editing a file."""
    doc = {k: v for k, v in document.items() if k not in ("hash", "version")}
    try:
        created = parse_utc(doc.get("created_at", ""))
    except ValueError as exc:
        raise PolicyBuildError(f"cannot seal: created_at: {exc}") from None
    stamp = datetime.fromtimestamp(created // MS_PER_S, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    doc["version"] = f"{stamp}-{_content_id(doc)}"
    doc["hash"] = document_hash(doc)
    return doc


# ---------------------------------------------------------------------------------------------
# building


def limits_section(limits: SafetyLimits) -> dict[str, float]:
    return limits.as_dict()


def zone_section(zone: AutonomyZone) -> dict[str, float]:
    return zone.as_dict()


def decision_values(decision: Decision) -> dict[str, float]:
    """The decision's per-symbol policy values (absent ones left out, never defaulted)."""
    values = decision.numeric_values()
    return {k: float(values[k]) for k in SYMBOL_KEYS if values.get(k) is not None}


def build_document(
    decisions: Iterable[Decision],
    *,
    kind: str,
    policy: str,
    model_version: str = "",
    limits: SafetyLimits | None = None,
    zone: AutonomyZone | None = None,
    created_ms: int | None = None,
    valid_for_ms: int,
    as_of_ms: int | None = None,
) -> dict[str, Any]:
    """A sealed policy document from decisions: entries become symbols, skips are left out.

    An entry whose values the file cannot carry (outside the zone, or a ladder that is not
    strictly ascending) is left out too, with its reason under `source.omitted`: fail closed.
    """
    if kind not in SOURCE_KINDS:
        raise PolicyBuildError(f"source kind must be one of {', '.join(SOURCE_KINDS)}: {kind!r}")
    if not (isinstance(valid_for_ms, int) and valid_for_ms > 0):
        raise PolicyBuildError(f"validity must be a positive duration, got {valid_for_ms!r} ms")
    limits = limits or SafetyLimits()
    zone = zone or AutonomyZone.for_limits(limits)
    created = now_ms() if created_ms is None else int(created_ms)
    symbols: dict[str, dict[str, float]] = {}
    omitted: dict[str, str] = {}
    for d in decisions:
        name = file_symbol(d.symbol)
        if d.skip is not None:
            omitted.setdefault(name, f"{d.skip}: {d.skip_detail}".rstrip(": "))
            continue
        if not _SYMBOL_RE.match(name):
            omitted[name] = "symbol is not BASE-QUOTE"
            continue
        values = decision_values(d)
        problems = _value_problems(f"symbols.{name}", values, _bounds(limits, zone))
        if problems:
            omitted[name] = str(problems[0])
            continue
        symbols[name] = values
        omitted.pop(name, None)
    source: dict[str, Any] = {"kind": kind, "policy": policy, "model_version": model_version}
    if as_of_ms is not None:
        source["as_of"] = iso_utc(as_of_ms)
    if omitted:
        source["omitted"] = dict(sorted(omitted.items()))
    names = sorted(symbols)
    doc = {
        "schema": SCHEMA_ID,
        "created_at": iso_utc(created),
        "valid_until": iso_utc(created + valid_for_ms),
        "source": source,
        "limits": limits_section(limits),
        "zone": zone_section(zone),
        "universe": {"symbols": names, "count": len(names)},
        "symbols": {s: symbols[s] for s in names},
    }
    return seal(doc)


def source_kind(policy: Policy) -> str:
    """`static` for StaticPolicy, `ai` for anything model-driven."""
    from engine.core.policy import StaticPolicy

    return "static" if isinstance(policy, StaticPolicy) else "ai"


def policy_document(
    policy: Policy,
    snapshot: MarketSnapshot,
    portfolio: Portfolio,
    *,
    valid_for_ms: int,
    limits: SafetyLimits | None = None,
    created_ms: int | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """Run any `Policy` on one snapshot (through `safe_decide`) and build the document."""
    limits = limits or SafetyLimits()
    zone = AutonomyZone.for_limits(limits)
    decisions = safe_decide(policy, snapshot, portfolio, zone)
    return build_document(
        decisions,
        kind=kind or source_kind(policy),
        policy=str(getattr(policy, "name", type(policy).__name__)),
        model_version=str(getattr(policy, "version", "")),
        limits=limits,
        zone=zone,
        created_ms=created_ms,
        valid_for_ms=valid_for_ms,
        as_of_ms=snapshot.ts,
    )


# ---------------------------------------------------------------------------------------------
# writing


def write_policy_file(document: Mapping[str, Any], path: str | Path) -> str:
    """Validate, then write atomically (temp file + rename); returns the hash written.

    A document that would be refused by a reader is never written. The text is the canonical
    key order, indented for review; the hash does not depend on the indentation.
    """
    doc = dict(document)
    problems = [p for p in check_document(doc, now=None) if p.kind != "stale"]
    if problems:
        raise _error_for(problems, f"refusing to write {path}")
    text = json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(doc["hash"])


# ---------------------------------------------------------------------------------------------
# reading and validation


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read_document(path: str | Path) -> dict[str, Any]:
    """Parse the file (no validation): PolicyFileMissing / PolicyFileCorrupt on failure."""
    p = Path(path)
    if not p.is_file():
        raise PolicyFileMissing(f"policy file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileCorrupt(f"cannot read policy file {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyFileCorrupt(f"policy file {p} is not UTF-8 text") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PolicyFileCorrupt(
            f"policy file {p} is not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from None
    except ValueError as exc:
        raise PolicyFileCorrupt(f"policy file {p}: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyFileCorrupt(f"policy file {p} is not a JSON object")
    return doc


@dataclass(frozen=True, slots=True)
class _Bounds:
    min_leverage: float
    max_leverage: float
    max_size: float
    min_harvest: float
    max_harvest: float
    min_kill: float
    max_kill: float


def _bounds(limits: SafetyLimits, zone: AutonomyZone) -> _Bounds:
    return _Bounds(
        zone.min_leverage,
        min(zone.max_leverage, limits.max_leverage),
        min(zone.max_size_pct, limits.max_position_fraction),
        zone.min_harvest_r,
        zone.max_harvest_r,
        zone.min_kill_threshold,
        zone.max_kill_threshold,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_problems(where: str, values: Mapping[str, Any], b: _Bounds) -> list[PolicyProblem]:
    """Bounds of one symbol's values (numbers already checked to be finite)."""
    out: list[PolicyProblem] = []

    def check(key: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
        if key not in values:
            return
        v = values[key]
        below = v <= lo if lo_open else v < lo
        above = v >= hi if hi_open else v > hi
        if below or above:
            interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            out.append(PolicyProblem("bounds", f"{where}.{key}", f"{v:g} outside {interval}"))

    check("leverage", b.min_leverage, b.max_leverage)
    check("size_pct", 0.0, b.max_size, lo_open=True)
    check("stop_loss_pct", 0.0, 1.0, lo_open=True, hi_open=True)
    check("take_profit_pct", 0.0, 1.0, lo_open=True, hi_open=True)
    for key in HARVEST_KEYS:
        check(key, b.min_harvest, b.max_harvest)
    for key in CLOSE_FRAC_KEYS:
        check(key, 0.0, 1.0, lo_open=True)
    check("kill_threshold", b.min_kill, b.max_kill)
    check("kill_reduce_threshold", b.min_kill, b.max_kill)
    check("kill_reduce_frac", 0.0, 1.0, lo_open=True, hi_open=True)
    check("max_hold_sec", 0.0, math.inf, lo_open=True, hi_open=True)
    reduce, kill = values.get("kill_reduce_threshold"), values.get("kill_threshold")
    if reduce is not None and kill is not None and reduce > kill:
        out.append(
            PolicyProblem(
                "bounds",
                f"{where}.kill_reduce_threshold",
                f"{reduce:g} above kill_threshold {kill:g}",
            )
        )
    ladder = [values[k] for k in LADDER_KEYS if k in values]
    if len(ladder) == len(LADDER_KEYS) and not (ladder[0] < ladder[1] < ladder[2]):
        out.append(
            PolicyProblem(
                "bounds",
                f"{where}.harvest",
                "ladder not strictly ascending: t1 {:g}, t2 {:g}, t3 {:g} R".format(*ladder),
            )
        )
    return out


def _schema_problems(doc: Mapping[str, Any]) -> list[PolicyProblem]:
    """The structure `policy_schema.json` describes, with one precise message per problem."""
    out: list[PolicyProblem] = []

    def bad(where: str, message: str) -> None:
        out.append(PolicyProblem("schema", where, message))

    for key in TOP_KEYS:
        if key not in doc:
            bad(key, "missing")
    for key in sorted(set(doc) - set(TOP_KEYS)):
        bad(key, "unknown field")
    if "schema" in doc and doc["schema"] != SCHEMA_ID:
        bad("schema", f"is {doc['schema']!r}, this qctl reads {SCHEMA_ID!r}")
    if "version" in doc and not (
        isinstance(doc["version"], str) and _VERSION_RE.match(doc["version"])
    ):
        bad("version", f"{doc['version']!r} is not like 20261125T134000Z-ab12cd34")
    for key in ("created_at", "valid_until"):
        if key in doc:
            try:
                parse_utc(doc[key])
            except ValueError as exc:
                bad(key, str(exc))
    if "hash" in doc and not (isinstance(doc["hash"], str) and _HASH_RE.match(doc["hash"])):
        bad("hash", "not a sha256 hex digest")

    source = doc.get("source")
    if "source" in doc:
        if not isinstance(source, dict):
            bad("source", "not an object")
        else:
            if source.get("kind") not in SOURCE_KINDS:
                bad("source.kind", f"{source.get('kind')!r} not one of {', '.join(SOURCE_KINDS)}")
            if not (isinstance(source.get("policy"), str) and source.get("policy")):
                bad("source.policy", "missing or empty")
            for key in ("model_version", "as_of"):
                if key in source and not isinstance(source[key], str):
                    bad(f"source.{key}", "not a string")
            if "as_of" in source and isinstance(source["as_of"], str):
                try:
                    parse_utc(source["as_of"])
                except ValueError as exc:
                    bad("source.as_of", str(exc))
            omitted = source.get("omitted", {})
            if not isinstance(omitted, dict) or not all(
                isinstance(v, str) for v in omitted.values()
            ):
                bad("source.omitted", "not an object of reasons")

    for section, keys in (("limits", LIMIT_KEYS), ("zone", ZONE_KEYS)):
        if section not in doc:
            continue
        node = doc[section]
        if not isinstance(node, dict):
            bad(section, "not an object")
            continue
        for key in keys:
            if key not in node:
                bad(f"{section}.{key}", "missing")
            elif not _is_number(node[key]) or not math.isfinite(node[key]):
                bad(f"{section}.{key}", f"not a finite number: {node[key]!r}")
        for key in sorted(set(node) - set(keys)):
            bad(f"{section}.{key}", "unknown field")

    universe = doc.get("universe")
    if "universe" in doc:
        if not isinstance(universe, dict):
            bad("universe", "not an object")
        else:
            for key in sorted(set(universe) - {"symbols", "count"}):
                bad(f"universe.{key}", "unknown field")
            names = universe.get("symbols")
            if not isinstance(names, list):
                bad("universe.symbols", "missing or not a list")
            else:
                for s in names:
                    if not (isinstance(s, str) and _SYMBOL_RE.match(s)):
                        bad("universe.symbols", f"{s!r} is not a BASE-QUOTE symbol")
                if len({str(s) for s in names}) != len(names):
                    bad("universe.symbols", "repeats a symbol")
            count = universe.get("count")
            if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
                bad("universe.count", f"not a non-negative integer: {count!r}")
            elif isinstance(names, list) and count != len(names):
                bad("universe.count", f"is {count}, universe.symbols lists {len(names)}")

    symbols = doc.get("symbols")
    if "symbols" in doc:
        if not isinstance(symbols, dict):
            bad("symbols", "not an object")
        else:
            seen: dict[str, str] = {}
            for name, values in symbols.items():
                where = f"symbols.{name}"
                if not _SYMBOL_RE.match(name):
                    bad(where, "symbol is not BASE-QUOTE (e.g. BTC-USDT)")
                key = symbol_key(name)
                if key in seen:
                    bad(where, f"same symbol as {seen[key]}")
                seen[key] = name
                if not isinstance(values, dict) or not values:
                    bad(where, "not an object of values")
                    continue
                for k in sorted(set(values) - set(SYMBOL_KEYS)):
                    bad(f"{where}.{k}", "unknown policy key")
                for k in SYMBOL_KEYS:
                    if k in values and (not _is_number(values[k]) or not math.isfinite(values[k])):
                        bad(f"{where}.{k}", f"not a finite number: {values[k]!r}")
    return out


def check_document(
    doc: Mapping[str, Any],
    *,
    now: int | None,
    limits: SafetyLimits | None = None,
) -> list[PolicyProblem]:
    """Every reason to refuse the document, in order: schema, hash, staleness, bounds.

    `now` (epoch ms) None skips the staleness check. `limits`: the reader's configured limits;
    values must fit the stricter of those and the file's own limits and zone, and the file's
    limits and zone may not be looser than the owner's hard ones.
    """
    problems = _schema_problems(doc)
    if problems:
        return problems
    expected = document_hash(doc)
    if doc["hash"] != expected:
        problems.append(
            PolicyProblem("hash", "hash", "does not match the content (edited by hand? re-seal it)")
        )
    if now is not None:
        valid_until = parse_utc(doc["valid_until"])
        if valid_until < now:
            problems.append(
                PolicyProblem(
                    "stale",
                    "valid_until",
                    f"{doc['valid_until']} is in the past (now {iso_utc(now)}); publish a new policy",
                )
            )
    try:
        file_limits = SafetyLimits.from_mapping(doc["limits"])
    except LimitsError as exc:
        problems.append(PolicyProblem("bounds", "limits", str(exc)))
        return problems
    reader = limits or SafetyLimits()
    effective = SafetyLimits(
        min_margin_ratio_pct=max(file_limits.min_margin_ratio_pct, reader.min_margin_ratio_pct),
        max_leverage=min(file_limits.max_leverage, reader.max_leverage),
        max_position_size_pct=min(file_limits.max_position_size_pct, reader.max_position_size_pct),
        max_total_exposure_pct=min(
            file_limits.max_total_exposure_pct, reader.max_total_exposure_pct
        ),
    )
    z = doc["zone"]
    hard = AutonomyZone.for_limits(SafetyLimits())
    for key, owner in (("max_leverage", hard.max_leverage), ("max_size_pct", hard.max_size_pct)):
        if z[key] > owner:
            problems.append(
                PolicyProblem(
                    "bounds", f"zone.{key}", f"{z[key]:g} wider than the owner's {owner:g}"
                )
            )
    try:
        zone = AutonomyZone(
            limits=effective,
            min_leverage=z["min_leverage"],
            min_harvest_r=z["min_harvest_r"],
            max_harvest_r=z["max_harvest_r"],
            min_kill_threshold=z["min_kill_threshold"],
            max_kill_threshold=z["max_kill_threshold"],
        )
    except LimitsError as exc:
        problems.append(PolicyProblem("bounds", "zone", str(exc)))
        return problems
    b = _Bounds(
        zone.min_leverage,
        min(z["max_leverage"], effective.max_leverage),
        min(z["max_size_pct"], effective.max_position_size_pct / PERCENT),
        zone.min_harvest_r,
        zone.max_harvest_r,
        zone.min_kill_threshold,
        zone.max_kill_threshold,
    )
    for name, values in doc["symbols"].items():
        problems.extend(_value_problems(f"symbols.{name}", values, b))
    return problems


def never_trades(policy: Any, equity: float, limits: SafetyLimits | None = None) -> str | None:
    """Why a StaticPolicy can never enter at this equity (every entry OUT_OF_ZONE), or None.

    Its values are checked when the file loads; its size is a fixed notional, a fraction of the
    equity that only this check can judge. Other policies: None (they decide per bar)."""
    size_of = getattr(policy, "size_pct", None)
    config = getattr(policy, "config", None)
    if size_of is None or config is None:
        return None
    zone = AutonomyZone.for_limits(limits or SafetyLimits())
    size = size_of(float(equity))
    if 0 < size <= zone.max_size_pct:
        return None
    return (
        f"policy {policy.name} can never trade at {equity:g} USDT: notional_usdt "
        f"{config.notional_usdt:g} is {size:.4g} of equity, outside (0, {zone.max_size_pct:g}]: "
        "every entry would be skipped OUT_OF_ZONE"
    )


def _error_for(problems: list[PolicyProblem], prefix: str) -> PolicyFileError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return _ERROR_FOR_KIND[first.kind](f"{prefix}: {first}{more}")


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A validated policy file; look values up with `value` / `values_for` (None: skip)."""

    data: Mapping[str, Any]
    path: str = ""
    _index: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, data: Mapping[str, Any], path: str = "") -> PolicyDocument:
        return cls(data, path, {symbol_key(s): s for s in data["symbols"]})

    @property
    def version(self) -> str:
        return str(self.data["version"])

    @property
    def hash(self) -> str:
        return str(self.data["hash"])

    @property
    def valid_until_ms(self) -> int:
        return parse_utc(self.data["valid_until"])

    @property
    def universe(self) -> tuple[str, ...]:
        return tuple(self.data["universe"]["symbols"])

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.data["symbols"])

    def values_for(self, symbol: str) -> dict[str, float] | None:
        """The symbol's values (any spelling of it), or None when the policy has none."""
        name = self._index.get(symbol_key(symbol))
        return None if name is None else dict(self.data["symbols"][name])

    def value(self, symbol: str, key: str | PolicyKey) -> float | None:
        values = self.values_for(symbol)
        return None if values is None else values.get(str(key))

    def is_stale(self, at_ms: int) -> bool:
        return self.valid_until_ms < at_ms


def validate_document(
    doc: Mapping[str, Any],
    *,
    now: int | None,
    limits: SafetyLimits | None = None,
    path: str = "",
) -> PolicyDocument:
    """`check_document`, raising the first problem as the matching `PolicyFileError`."""
    problems = check_document(doc, now=now, limits=limits)
    if problems:
        raise _error_for(problems, f"policy file {path}" if path else "policy")
    return PolicyDocument.of(doc, path)


def load_policy_file(
    path: str | Path,
    *,
    now: int | None = None,
    check_stale: bool = True,
    limits: SafetyLimits | None = None,
) -> PolicyDocument:
    """Read and validate a policy file; `now` defaults to the wall clock (epoch ms)."""
    doc = read_document(path)
    at = (now if now is not None else now_ms()) if check_stale else None
    return validate_document(doc, now=at, limits=limits, path=str(path))


def default_policy_path() -> Path:
    """`$QCTL_POLICY_FILE`, else `./qctl_policy.json`."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_POLICY_FILE


def load_schema() -> dict[str, Any]:
    """The JSON Schema shipped with the package (for jsonschema users and docs)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# a Policy backed by a policy file


class FilePolicy:
    """Values from a published policy file, direction from an inner policy.

    This is what migrated legacy code does (its own signal picks the side, the policy file gives
    leverage, size, stop, harvest and kill), as an engine `Policy`, so the fail-closed drill can
    backtest it. Staleness is judged at the snapshot's time. The file is re-read when it changes.
    """

    def __init__(self, inner: Policy, path: str | Path, limits: SafetyLimits | None = None) -> None:
        self.inner = inner
        self.path = Path(path)
        self.limits = limits or SafetyLimits()
        self.name = f"file:{getattr(inner, 'name', type(inner).__name__)}"
        self.version = ""
        self._stamp: tuple[int, int] | None = None
        self._loaded: PolicyDocument | PolicyFileError | None = None

    def _document(self) -> PolicyDocument | PolicyFileError:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._stamp or self._loaded is None:
            try:
                self._loaded = load_policy_file(self.path, check_stale=False, limits=self.limits)
                self.version = self._loaded.version
            except PolicyFileError as exc:
                self._loaded = exc
            self._stamp = stamp
        return self._loaded

    def decide(self, snapshot: MarketSnapshot, portfolio: Portfolio) -> list[Decision]:
        doc = self._document()
        out: list[Decision] = []
        for d in self.inner.decide(snapshot, portfolio):
            d = d.with_changes(policy=self.name, model_version=self.version)
            if d.skip is not None:
                out.append(d)
            elif isinstance(doc, PolicyFileError):
                out.append(d.as_skip(doc.skip_reason, str(doc)))
            elif doc.is_stale(snapshot.ts):
                out.append(
                    d.as_skip(
                        SkipReason.MODEL_STALE,
                        f"policy file {self.path} valid until {doc.data['valid_until']}",
                    )
                )
            else:
                out.append(self._apply(d, doc))
        return out

    def _apply(self, d: Decision, doc: PolicyDocument) -> Decision:
        values = doc.values_for(d.symbol)
        if values is None:
            return d.as_skip(SkipReason.NOT_IN_UNIVERSE, f"{d.symbol} not in policy {doc.version}")
        missing = [k for k in REQUIRED_KEYS if k not in values]
        if missing:
            return d.as_skip(
                SkipReason.MISSING_VALUE, f"policy {doc.version} has no {missing[0]} for {d.symbol}"
            )
        ladder = None
        if any(k in values for k in (*HARVEST_KEYS, *CLOSE_FRAC_KEYS)):
            absent = [k for k in (*HARVEST_KEYS, *CLOSE_FRAC_KEYS) if k not in values]
            if absent:  # part of a ladder is no ladder to trade on
                return d.as_skip(
                    SkipReason.MISSING_VALUE,
                    f"policy {doc.version} has no {absent[0]} for {d.symbol}",
                )
            ladder = HarvestLadder(
                *(values[k] for k in HARVEST_KEYS),
                t1_close_frac=values["harvest_t1_close_frac"],
                t2_close_frac=values["harvest_t2_close_frac"],
            )
        return d.with_changes(
            leverage=values["leverage"],
            size_pct=values["size_pct"],
            stop_loss_pct=values["stop_loss_pct"],
            take_profit_pct=values.get("take_profit_pct"),
            harvest=ladder,
            kill_threshold=values["kill_threshold"],
            kill_reduce_threshold=values["kill_reduce_threshold"],
            kill_reduce_frac=values["kill_reduce_frac"],
            max_hold_sec=values["max_hold_sec"],
        )


# ---------------------------------------------------------------------------------------------
# running a policy over market data to publish


def _aligned(md: Any) -> tuple[Any, dict[str, Bars]]:
    from engine.core.bars import align

    bars = align(md)
    if bars.n_steps == 0:
        raise PolicyBuildError("no bars in the market data")
    return bars, {s: Bars.from_arrays(*bars.series[s]) for s in bars.symbols}


def _snapshot(bars: Any, series: Mapping[str, Bars], i: int) -> MarketSnapshot:
    known = dict(zip(bars.symbols, bars.known[i].tolist(), strict=True))
    return MarketSnapshot(int(bars.ts[i]) + bars.step_ms, bars.step_ms, series, known)


def latest_snapshot(md: Any, policy: Policy | None = None) -> MarketSnapshot:
    """The snapshot after the last bar; for a policy that decides only at refresh bars
    (`is_refresh`, like StaticPolicy), after the last such bar."""
    bars, series = _aligned(md)
    is_refresh = getattr(policy, "is_refresh", None)
    for i in range(bars.n_steps - 1, -1, -1):
        snap = _snapshot(bars, series, i)
        if is_refresh is None or is_refresh(snap):
            return snap
    raise PolicyBuildError("the policy never decides on these bars (no refresh bar)")


def last_entries(
    policy: Policy, md: Any, portfolio: Portfolio, limits: SafetyLimits | None = None
) -> list[Decision]:
    """The last entry decision per symbol over every bar of `md` (a flat book throughout).

    What a policy file published from this window would have held: the drill's intact control.
    """
    zone = AutonomyZone.for_limits(limits or SafetyLimits())
    bars, series = _aligned(md)
    latest: dict[str, Decision] = {}
    for i in range(bars.n_steps):
        for d in safe_decide(policy, _snapshot(bars, series, i), portfolio, zone):
            if d.skip is None:
                latest[d.symbol] = d
    return [latest[s] for s in sorted(latest)]
