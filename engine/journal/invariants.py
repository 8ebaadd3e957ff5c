"""What `qctl verify` proves about the engine: journal invariants, decision variation, and the
fail-closed drill. Library code; qctl only wires it to the command line.

Journal invariants, over every run of a journal, against the owner's `SafetyLimits` made
stricter by the limits each run recorded:

- `journal.leverage`: every entry decision and every open position row has
  leverage <= min(max_leverage, the exchange bracket for the position's notional);
- `journal.margin_ratio`: margin ratio >= min_margin_ratio at *every* equity point;
- `journal.position_size`: each opened position's notional <= max_position_size of the equity
  at that time;
- `journal.exposure`: total exposure <= max_total_exposure at *every* equity point (the engine
  holds the limit at each bar close: a book that prices pushed past it is trimmed, REDUCING,
  before the equity row is written);
- `journal.protective_stop`: every opened position has a stop on the losing side of its entry
  and a reduce-only STOP_MARKET order at that price, placed with it and never rejected;
- `journal.events`: every committed event is whole (`engine.journal.consistency`): a FILLED
  order has its fill, a fill its order and position row, an entry its decision;
- `journal.run_status`: no run crashed (marked `crashed`, or still `running` with a stale
  heartbeat and its process gone: `engine.journal.store.run_liveness`); a run whose writer
  cannot be judged (another host, a pre-3 journal) is listed, not failed.

Size and exposure are compared with `FILL_TOLERANCE` of slack: the kernel counts the venue file's
fee and slippage (`RiskKernel.entry_cost`), but a live fill can slip more than configured, and a
position's size is compared with the bar's last equity row, after the fees of the bar's later
entries.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.tiers import LeverageTiers
from engine.domain import OrderPurpose, OrderType, SafetyLimits, SkipReason

if TYPE_CHECKING:  # the journal pulls in sqlmodel: keep `qctl --help` fast
    from engine.core.policy import Policy
    from engine.journal.store import Journal

FILL_TOLERANCE = 0.01  # relative: costs beyond the venue file's between the kernel and the fill
FLOAT_EPS = 1e-9  # relative: a value landing exactly on a limit is not a violation
MAX_DETAILS = 20  # offending rows listed per check (all are counted)
JOURNAL_CHECKS = (
    "journal.leverage",
    "journal.margin_ratio",
    "journal.position_size",
    "journal.exposure",
    "journal.protective_stop",
    "journal.events",
    "journal.run_status",
)
VARIATION_FIELDS = ("leverage", "size_pct", "harvest_t1_r")
ENTRY_ACTIONS = ("long", "short")


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # nothing to check (no journal given, no run of that policy...)
    ERROR = "error"  # the check could not run (unreadable input)


@dataclass(slots=True)
class CheckResult:
    """One named check: status, a one-line summary, offending rows, and numbers for JSON."""

    name: str
    status: CheckStatus
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in (CheckStatus.FAIL, CheckStatus.ERROR)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "summary": self.summary,
            "details": list(self.details),
            "data": self.data,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def timed(name: str, fn: Callable[[], CheckResult | list[CheckResult]]) -> list[CheckResult]:
    """Run one check; an unexpected exception becomes an ERROR result, never a crash."""
    t0 = time.perf_counter()
    try:
        out = fn()
        results = out if isinstance(out, list) else [out]
    except Exception as exc:  # a broken input must still give a named, failing check
        results = [CheckResult(name, CheckStatus.ERROR, f"{type(exc).__name__}: {exc}")]
    elapsed = time.perf_counter() - t0
    for r in results:
        r.elapsed_s = elapsed / len(results)
    return results


# ---------------------------------------------------------------------------------------------
# journal invariants


def stricter(a: SafetyLimits, b: SafetyLimits) -> SafetyLimits:
    """The stricter of two sets of limits, field by field."""
    return SafetyLimits(
        min_margin_ratio_pct=max(a.min_margin_ratio_pct, b.min_margin_ratio_pct),
        max_leverage=min(a.max_leverage, b.max_leverage),
        max_position_size_pct=min(a.max_position_size_pct, b.max_position_size_pct),
        max_total_exposure_pct=min(a.max_total_exposure_pct, b.max_total_exposure_pct),
    )


def run_limits(recorded: str, base: SafetyLimits) -> tuple[SafetyLimits, str]:
    """Limits for one run: `base` made stricter by its recorded `limits` JSON.

    Returns (limits, problem): a recorded set that is unreadable or looser than the hard limits is
    a problem in itself (the run claimed limits it may not have), and `base` is used.
    """
    try:
        data = json.loads(recorded or "{}")
        return stricter(base, SafetyLimits.from_mapping(data)), ""
    except (ValueError, TypeError) as exc:
        return base, f"recorded limits unusable ({exc})"


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def _above(value: float, bound: float, rel: float) -> bool:
    """True when value exceeds bound beyond a relative slack (NaN counts as above)."""
    return not (value <= bound * (1 + rel))


@dataclass(slots=True)
class _Tally:
    name: str
    what: str  # what was checked, for the summary: "rows", "equity points"...
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown when it passes

    def result(self, limit_text: str) -> CheckResult:
        n = len(self.violations)
        data = {"checked": self.checked, "violations": n}
        if n:
            return CheckResult(
                self.name,
                CheckStatus.FAIL,
                f"{n} of {self.checked} {self.what} break {limit_text}",
                self.violations[:MAX_DETAILS],
                data,
            )
        if self.checked == 0:
            return CheckResult(
                self.name, CheckStatus.PASS, f"no {self.what} to check ({limit_text})", [], data
            )
        return CheckResult(
            self.name, CheckStatus.PASS, f"{self.checked} {self.what} within {limit_text}", [], data
        )


def _select(conn, sql: str, params: Sequence[Any]) -> Iterator[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=True))


def check_journal(
    journal: Journal,
    limits: SafetyLimits | None = None,
    tiers: LeverageTiers | None = None,
    run_ids: Sequence[str] | None = None,
) -> list[CheckResult]:
    """The five journal invariants (module docstring) over the given runs (default: all)."""
    base = limits or SafetyLimits()
    tiers = tiers or LeverageTiers.load()
    conn = journal.connection
    runs = journal.runs()
    if run_ids is not None:
        wanted = set(run_ids)
        missing = sorted(wanted - {r["id"] for r in runs})
        if missing:
            raise ValueError(f"no run {missing[0]} in {journal.path}")
        runs = [r for r in runs if r["id"] in wanted]
    if not runs:
        return [
            CheckResult(name, CheckStatus.SKIP, f"no run in {journal.path}")
            for name in JOURNAL_CHECKS
        ]
    lev = _Tally("journal.leverage", "entry decisions and position rows")
    margin = _Tally("journal.margin_ratio", "equity points")
    size = _Tally("journal.position_size", "opened positions")
    exposure = _Tally("journal.exposure", "equity points")
    stop = _Tally("journal.protective_stop", "opened positions")
    events = _Tally("journal.events", "orders, fills and position rows")
    status = _Tally("journal.run_status", "runs")
    tallies = (lev, margin, size, exposure, stop, events, status)
    strictest = base
    for run in runs:
        rid = run["id"]
        lim, problem = run_limits(run.get("limits") or "{}", base)
        strictest = stricter(strictest, lim)
        if problem:
            for t in tallies:
                t.violations.append(f"run {rid}: {problem}")
        _check_leverage(conn, rid, lim, tiers, lev)
        _check_margin(conn, rid, lim, margin)
        _check_size_and_exposure(conn, rid, lim, size, exposure)
        _check_stops(conn, rid, stop)
        _check_events(conn, rid, events)
        _check_status(run, status)
    texts = {
        "journal.leverage": f"leverage <= min({strictest.max_leverage:g}x, bracket)",
        "journal.margin_ratio": f"margin ratio >= {strictest.min_margin_ratio:g}",
        "journal.position_size": f"position <= {strictest.max_position_fraction:g} of equity",
        "journal.exposure": f"exposure <= {strictest.max_exposure_fraction:g} of equity",
        "journal.protective_stop": "a protective stop on every position",
        "journal.events": "whole events (order, fill, position, decision)",
        "journal.run_status": "no crashed run",
    }
    results = [t.result(texts[t.name]) for t in tallies]
    for r in results:
        r.data["runs"] = len(runs)
    if status.notes and results[-1].status is CheckStatus.PASS:
        results[-1].details = status.notes[:MAX_DETAILS]
    return results


def _check_events(conn, rid: str, t: _Tally) -> None:
    from engine.journal.consistency import event_problems

    for table in ('"order"', "fill", "position"):
        t.checked += int(
            conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (rid,)).fetchone()[0]
        )
    for link, lines in event_problems(conn, [rid]).items():
        t.violations.extend(f"{line}: {link}" for line in lines)


def _check_status(run: dict[str, Any], t: _Tally) -> None:
    from engine.journal.store import run_liveness

    t.checked += 1
    rid, liveness = run["id"], run_liveness(run)
    if liveness == "crashed":
        beat = run.get("heartbeat_ts") or run.get("ended_ts")
        t.violations.append(
            f"run {rid}: crashed (last heartbeat at {beat}, pid {run.get('pid')} on "
            f"{run.get('host')} gone); its committed rows are checked, the rest was lost"
        )
    elif liveness in ("running", "unknown"):
        t.notes.append(f"run {rid}: {liveness} (not finished)")


def _check_leverage(conn, rid: str, lim: SafetyLimits, tiers: LeverageTiers, t: _Tally) -> None:
    for d in _select(
        conn,
        "SELECT id, ts, symbol, leverage FROM decision WHERE run_id = ? AND action IN (?, ?)",
        (rid, *ENTRY_ACTIONS),
    ):
        t.checked += 1
        value = _num(d["leverage"])
        if _above(value, lim.max_leverage, FLOAT_EPS) or value < 1 - FLOAT_EPS:
            t.violations.append(
                f"run {rid} decision {d['id']} {d['symbol']}: leverage {value:g}x, "
                f"limit {lim.max_leverage:g}x"
            )
    for p in _select(
        conn,
        "SELECT id, ts, event, symbol, qty, entry_price, leverage FROM position "
        "WHERE run_id = ? AND qty > 0",
        (rid,),
    ):
        t.checked += 1
        value = _num(p["leverage"])
        notional = _num(p["qty"]) * _num(p["entry_price"])
        where = f"run {rid} position {p['id']} ({p['event']}) {p['symbol']}"
        if not tiers.has(p["symbol"]):
            t.violations.append(f"{where}: no leverage brackets known ({tiers.source})")
            continue
        bracket = tiers.max_leverage(p["symbol"], notional)
        cap = min(lim.max_leverage, bracket)
        if _above(value, cap, FLOAT_EPS):
            t.violations.append(
                f"{where}: leverage {value:g}x above min({lim.max_leverage:g}x, bracket "
                f"{bracket:g}x at notional {notional:.2f})"
            )


def _check_margin(conn, rid: str, lim: SafetyLimits, t: _Tally) -> None:
    bound = lim.min_margin_ratio
    t.checked += int(
        conn.execute("SELECT COUNT(*) FROM equity WHERE run_id = ?", (rid,)).fetchone()[0]
    )
    for e in _select(
        conn,
        "SELECT id, ts, margin_ratio, equity, open_positions FROM equity "
        "WHERE run_id = ? AND (margin_ratio IS NULL OR margin_ratio < ?) ORDER BY ts, id",
        (rid, bound * (1 - FLOAT_EPS)),
    ):
        t.violations.append(
            f"run {rid} equity {e['id']} at {e['ts']}: margin ratio "
            f"{'unknown' if e['margin_ratio'] is None else format(e['margin_ratio'], '.4f')} "
            f"< {bound:g} ({e['open_positions']} position(s) open)"
        )


def _equity_at(conn, rid: str, ts: int) -> float | None:
    row = conn.execute(
        "SELECT equity FROM equity WHERE run_id = ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT 1",
        (rid, ts),
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def _check_size_and_exposure(
    conn, rid: str, lim: SafetyLimits, size: _Tally, exposure: _Tally
) -> None:
    max_size = lim.max_position_fraction
    for p in _select(
        conn,
        "SELECT id, ts, symbol, qty, entry_price FROM position "
        "WHERE run_id = ? AND event = 'open' ORDER BY ts, id",
        (rid,),
    ):
        size.checked += 1
        notional = _num(p["qty"]) * _num(p["entry_price"])
        equity = _equity_at(conn, rid, p["ts"])
        where = f"run {rid} position {p['id']} {p['symbol']} at {p['ts']}"
        if equity is None or equity <= 0:
            size.violations.append(f"{where}: opened with no positive equity recorded")
        elif _above(notional / equity, max_size, FILL_TOLERANCE):
            size.violations.append(
                f"{where}: notional {notional:.2f} is {notional / equity:.4f} of equity "
                f"{equity:.2f}, limit {max_size:g}"
            )
    max_exposure = lim.max_exposure_fraction
    exposure.checked += int(
        conn.execute("SELECT COUNT(*) FROM equity WHERE run_id = ?", (rid,)).fetchone()[0]
    )
    for e in _select(
        conn,
        "SELECT id, ts, exposure, state FROM equity WHERE run_id = ? "
        "AND (exposure IS NULL OR exposure > ?) ORDER BY ts, id",
        (rid, max_exposure * (1 + FILL_TOLERANCE)),
    ):
        value = _num(e["exposure"])
        exposure.violations.append(
            f"run {rid} equity {e['id']} at {e['ts']}: exposure "
            f"{'unknown' if math.isnan(value) else format(value, '.4f')} "
            f"({e['state']}), limit {max_exposure:g}"
        )


def _check_stops(conn, rid: str, t: _Tally) -> None:
    for p in _select(
        conn,
        "SELECT id, ts, symbol, side, entry_price, stop_price, opened_ts FROM position "
        "WHERE run_id = ? AND event = 'open' ORDER BY ts, id",
        (rid,),
    ):
        t.checked += 1
        where = f"run {rid} position {p['id']} {p['symbol']} opened at {p['opened_ts']}"
        stop, entry = p["stop_price"], _num(p["entry_price"])
        if stop is None:
            t.violations.append(f"{where}: no stop price")
            continue
        long = p["side"] == "long"
        if not (0 < stop < entry if long else stop > entry):
            t.violations.append(
                f"{where}: stop {stop:g} is not on the losing side of entry {entry:g}"
            )
            continue
        # the order row holds the order's latest state (its ts is the last update), so the stop
        # placed with the position is found by its price, not by its time
        orders = list(
            _select(
                conn,
                'SELECT id, status, reduce_only FROM "order" WHERE run_id = ? AND symbol = ? '
                "AND purpose = ? AND type = ? AND ts >= ? AND ABS(stop_price - ?) <= ?",
                (
                    rid,
                    p["symbol"],
                    str(OrderPurpose.STOP_LOSS),
                    str(OrderType.STOP_MARKET),
                    p["opened_ts"],
                    stop,
                    abs(stop) * FLOAT_EPS,
                ),
            )
        )
        if not orders:
            t.violations.append(
                f"{where}: no STOP_MARKET stop-loss order at {stop:g} placed with it"
            )
        elif not any(o["reduce_only"] and o["status"] != "REJECTED" for o in orders):
            t.violations.append(f"{where}: its stop-loss order was rejected or is not reduce-only")


# ---------------------------------------------------------------------------------------------
# variation


def check_variation(
    journal: Journal,
    policies: Sequence[str] | None,
    run_ids: Sequence[str] | None = None,
    fields: Sequence[str] = VARIATION_FIELDS,
) -> CheckResult:
    """Entry decisions are not one constant value per field (leverage, size, T1) in any run.

    `policies`: run policy names to check (None: every run). A run with fewer than two entries
    cannot show variation and is reported, not judged; no judged run at all is a failure.
    """
    name = "variation"
    runs = journal.runs()
    if run_ids is not None:
        runs = [r for r in runs if r["id"] in set(run_ids)]
    if policies is not None:
        runs = [r for r in runs if r["policy"] in set(policies)]
    if not runs:
        which = f"policy {', '.join(policies)}" if policies else "any policy"
        return CheckResult(name, CheckStatus.SKIP, f"no run of {which} in {journal.path}")
    cols = ", ".join(fields)
    per_run: dict[str, Any] = {}
    constant: list[str] = []
    judged = 0
    for run in runs:
        rid = run["id"]
        rows = journal.connection.execute(
            f"SELECT {cols} FROM decision WHERE run_id = ? AND action IN (?, ?)",
            (rid, *ENTRY_ACTIONS),
        ).fetchall()
        stats: dict[str, Any] = {"policy": run["policy"], "entries": len(rows)}
        for j, f in enumerate(fields):
            values = [float(r[j]) for r in rows if r[j] is not None]
            distinct = {round(v, 9) for v in values}
            stats[f] = {
                "distinct": len(distinct),
                "min": min(values) if values else None,
                "max": max(values) if values else None,
            }
            if len(rows) >= 2 and len(distinct) <= 1:
                shown = f"{values[0]:g}" if values else "always missing"
                constant.append(
                    f"run {rid} ({run['policy']}): {f} is {shown} in all {len(rows)} entries"
                )
        if len(rows) >= 2:
            judged += 1
        per_run[rid] = stats
    data = {"runs": per_run, "judged_runs": judged}
    if constant:
        return CheckResult(
            name,
            CheckStatus.FAIL,
            f"{len(constant)} constant value(s) across entries",
            constant,
            data,
        )
    if judged == 0:
        return CheckResult(
            name,
            CheckStatus.FAIL,
            f"no run has two entries or more: variation cannot be shown ({len(runs)} run(s))",
            [],
            data,
        )
    ranges = []
    for rid, stats in per_run.items():
        if stats["entries"] >= 2:
            parts = [
                f"{f} {stats[f]['distinct']} values {stats[f]['min']:.4g}..{stats[f]['max']:.4g}"
                for f in fields
            ]
            ranges.append(f"run {rid}: {stats['entries']} entries; " + "; ".join(parts))
    return CheckResult(
        name, CheckStatus.PASS, f"{judged} run(s) with varying {', '.join(fields)}", ranges, data
    )


# ---------------------------------------------------------------------------------------------
# the fail-closed drill


@dataclass(frozen=True, slots=True)
class DrillCase:
    """One broken artefact: the policy built on it and the skip reason it must journal."""

    name: str
    policy: Policy
    expected: SkipReason
    broken: str  # what was done to the artefact, for the report


@dataclass(slots=True)
class DrillOutcome:
    name: str
    entries: int
    skips: dict[str, int]
    expected: str
    broken: str

    @property
    def ok(self) -> bool:
        return self.entries == 0 and self.skips.get(self.expected, 0) > 0


def drill_run(md: Any, policy: Policy, db: Path, **backtest: Any) -> tuple[int, dict[str, int]]:
    """Backtest `policy` into a fresh journal; (entries journaled, skip reason counts)."""
    from engine.backtest import run_backtest
    from engine.journal.store import Journal

    with Journal(db) as journal:
        run_backtest(md, policy, journal=journal, data_source="qctl verify drill", **backtest)
        conn = journal.connection
        journal.flush()
        decided = conn.execute(
            "SELECT COUNT(*) FROM decision WHERE action IN (?, ?)", ENTRY_ACTIONS
        ).fetchone()[0]
        ordered = conn.execute(
            'SELECT COUNT(*) FROM "order" WHERE purpose = ?', (str(OrderPurpose.ENTRY),)
        ).fetchone()[0]
        entries = max(decided, ordered)  # an entry order without its decision counts too
        skips = dict(
            conn.execute("SELECT skip, COUNT(*) FROM decision WHERE skip IS NOT NULL GROUP BY skip")
        )
    return int(entries), {str(k): int(v) for k, v in skips.items()}


def run_drill(
    md: Any,
    cases: Sequence[DrillCase],
    control: Policy,
    workdir: Path,
    *,
    label: str,
    **backtest: Any,
) -> CheckResult:
    """Each broken case must give zero entries and journal its skip reason; the intact
    `control` must enter at least once, else zero entries would prove nothing."""
    name = "drill"
    workdir.mkdir(parents=True, exist_ok=True)
    control_entries, control_skips = drill_run(md, control, workdir / "control.db", **backtest)
    outcomes = []
    for case in cases:
        entries, skips = drill_run(md, case.policy, workdir / f"{case.name}.db", **backtest)
        outcomes.append(DrillOutcome(case.name, entries, skips, str(case.expected), case.broken))
    bars = sum(len(sd.candles) for sd in md.symbols.values())
    data = {
        "policy": label,
        "symbols": sorted(md.symbols),
        "symbol_bars": bars,
        "control": {"entries": control_entries, "skips": control_skips},
        "cases": {
            o.name: {
                "broken": o.broken,
                "entries": o.entries,
                "expected_skip": o.expected,
                "skips": o.skips,
                "ok": o.ok,
            }
            for o in outcomes
        },
    }
    details = [
        f"{o.name} ({o.broken}): {o.entries} entries, {o.skips.get(o.expected, 0)} "
        f"{o.expected} skips" + ("" if o.ok else "  <-- FAILED")
        for o in outcomes
    ]
    details.insert(0, f"control (intact {label}): {control_entries} entries")
    bad = [o.name for o in outcomes if not o.ok]
    if bad:
        return CheckResult(
            name,
            CheckStatus.FAIL,
            f"{label}: {', '.join(bad)} did not fail closed (entries or no {bad[0]} skip reason)",
            details,
            data,
        )
    if control_entries == 0:
        top = sorted(control_skips.items(), key=lambda kv: -kv[1])[:3]
        why = ", ".join(f"{k} {v}" for k, v in top) or "no decision at all"
        return CheckResult(
            name,
            CheckStatus.FAIL,
            f"inconclusive: the intact {label} made no entry over {bars} symbol-bars ({why}), "
            "so zero entries with broken artefacts proves nothing (use a longer or other window)",
            details,
            data,
        )
    return CheckResult(
        name,
        CheckStatus.PASS,
        f"{label}: {', '.join(o.name for o in outcomes)} gave 0 entries and journaled skip "
        f"reasons; intact: {control_entries} entries",
        details,
        data,
    )


def copy_artefact(src: Path, dest: Path) -> Path:
    """A private copy of a file or directory for a drill case to damage."""
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    return dest


def corrupt_bytes(path: Path) -> None:
    """Damage a file the way a partial write would: keep only its first half."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def policy_file_cases(
    valid: Path, inner: Callable[[], Policy], workdir: Path, stale_ms: int
) -> list[DrillCase]:
    """Missing, stale (valid_until at `stale_ms`), truncated and tampered copies of a policy file."""
    from engine.policy_file import FilePolicy, iso_utc, read_document, seal, write_policy_file

    cases = []
    missing = workdir / "missing" / valid.name
    cases.append(
        DrillCase("missing", FilePolicy(inner(), missing), SkipReason.MODEL_MISSING, "deleted")
    )
    stale_path = workdir / "stale" / valid.name
    doc = read_document(valid)
    doc["created_at"] = iso_utc(stale_ms - 1000 * 3600)
    doc["valid_until"] = iso_utc(stale_ms)
    write_policy_file(seal(doc), stale_path)
    cases.append(
        DrillCase(
            "stale",
            FilePolicy(inner(), stale_path),
            SkipReason.MODEL_STALE,
            f"valid_until set to {iso_utc(stale_ms)}",
        )
    )
    corrupt = copy_artefact(valid, workdir / "corrupt" / valid.name)
    corrupt_bytes(corrupt)
    cases.append(
        DrillCase("corrupt", FilePolicy(inner(), corrupt), SkipReason.MODEL_CORRUPT, "truncated")
    )
    tampered = workdir / "tampered" / valid.name
    doc = read_document(valid)
    doc["source"]["policy"] = f"{doc['source']['policy']} (edited)"  # no re-seal: bad hash
    tampered.parent.mkdir(parents=True, exist_ok=True)
    tampered.write_text(json.dumps(doc), encoding="utf-8")
    cases.append(
        DrillCase(
            "tampered",
            FilePolicy(inner(), tampered),
            SkipReason.MODEL_CORRUPT,
            "edited without re-sealing (hash mismatch)",
        )
    )
    return cases
