"""The checks of `qctl verify` that need more than one journal query: the policy file check and
the fail-closed drills (policy file + StaticPolicy signals; a model directory). Library code:
`qctl verify` only parses options, calls these and formats the `CheckResult`s.

The model-directory drill knows the model set only through what it is given (a loaded set and a
policy factory), so the engine imports nothing of `models/`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.domain import SkipReason
from engine.journal.invariants import (
    CheckResult,
    CheckStatus,
    DrillCase,
    copy_artefact,
    corrupt_bytes,
    policy_file_cases,
    run_drill,
)

SECOND_MS = 1000
DRILL_FILE_VALID_MS = 24 * 3600 * SECOND_MS  # judged at the bars' (past) times: any span works
MAX_SHOWN_PROBLEMS = 20


def policy_file_check(path: Path, explicit: bool) -> CheckResult:
    """The published policy file passes schema, hash, staleness and bounds.

    Not `explicit` (a default path) and absent: SKIP, not FAIL."""
    from engine.policy_file import PolicyFileError, check_document, now_ms, read_document

    if not explicit and not path.exists():
        return CheckResult(
            "policy", CheckStatus.SKIP, f"no policy file at {path} (pass --policy-file)"
        )
    try:
        doc = read_document(path)
        problems = [str(p) for p in check_document(doc, now=now_ms())]
    except PolicyFileError as exc:
        return CheckResult("policy", CheckStatus.FAIL, str(exc), [], {"file": str(path)})
    if problems:
        return CheckResult(
            "policy",
            CheckStatus.FAIL,
            f"{path}: {len(problems)} problem(s), first: {problems[0]}",
            problems[:MAX_SHOWN_PROBLEMS],
            {"file": str(path), "problems": len(problems)},
        )
    return CheckResult(
        "policy",
        CheckStatus.PASS,
        f"{path}: policy {doc['version']} valid until {doc['valid_until']}, "
        f"{len(doc['symbols'])} symbol(s) within limits and zone",
        [],
        {"file": str(path), "version": doc["version"], "symbols": sorted(doc["symbols"])},
    )


def drill_window(
    data: Path, symbols: list[str] | None, bars: int, last_open_ms: int | None
) -> tuple[Any, int]:
    """Market data of the last `bars` bars (ending at `last_open_ms` at the latest), and the
    first bar's open time."""
    from engine.core.bars import timeframe_ms
    from engine.venues.candle_files import load_market_data

    full = load_market_data(data, symbols=symbols)
    step = timeframe_ms(full.timeframe)
    end = min(int(sd.candles.index[-1]) for sd in full.symbols.values())
    if last_open_ms is not None:
        end = min(end, last_open_ms)
    start = end - bars * step
    return load_market_data(data, symbols=symbols, start_ms=start, end_ms=end + 1), start


def static_drill(
    data: Path, symbols: list[str], bars: int, legacy: Path, workdir: Path, *, equity: float
) -> CheckResult:
    """The drill without models: StaticPolicy signals + a policy file, broken four ways
    (missing, stale, truncated, tampered)."""
    from engine.core.policy import StaticPolicy
    from engine.domain import Portfolio
    from engine.policy_file import FilePolicy, build_document, last_entries, write_policy_file

    md, start = drill_window(data, symbols, bars, None)

    def inner() -> StaticPolicy:
        return StaticPolicy.from_toml(legacy)

    published = last_entries(inner(), md, Portfolio(wallet_balance=equity))
    valid = workdir / "qctl_policy.json"
    write_policy_file(
        build_document(
            published,
            kind="static",
            policy=inner().name,
            model_version=inner().version,
            valid_for_ms=DRILL_FILE_VALID_MS,
        ),
        valid,
    )
    cases = policy_file_cases(valid, inner, workdir, stale_ms=start)
    return run_drill(
        md,
        cases,
        FilePolicy(inner(), valid),
        workdir / "runs",
        label="policy file + StaticPolicy signals",
        equity=equity,
    )


def model_dir_drill(
    data: Path,
    symbols: list[str] | None,
    bars: int,
    models: Path,
    workdir: Path,
    *,
    intact: Any,
    policy_for: Callable[..., Any],
    head_file: str,
    write_card: Callable[[Path, dict[str, Any]], Any],
    equity: float,
) -> CheckResult:
    """The drill with models: a copy of the model directory with `head_file` deleted, truncated,
    and every card's validity moved to the window's start; each must give zero entries.

    `intact`: the loaded set (`spec.lookback_bars`, `valid_until_ms`, `card`, `set_id`);
    `policy_for(directory, tiers=, funding=, round_trip_cost=)` builds the policy of a copy;
    `write_card(path, card)` writes a card re-sealed (the expiry is deliberate, not tampering).
    `symbols` None: the symbols the set was trained on (its ranks are cross-sectional).
    """
    from engine.core.tiers import LeverageTiers
    from engine.policy_file import iso_utc
    from engine.venues.candle_files import load_market_data
    from engine.venues.simulated import BrokerConfig

    lookback = intact.spec.lookback_bars
    if symbols is None:
        available = set(load_market_data(data).symbols)
        symbols = sorted(available & set(intact.card.get("symbols", available))) or None
    md, start = drill_window(data, symbols, bars + lookback, intact.valid_until_ms - SECOND_MS)
    tiers = LeverageTiers.load()
    funding = {s: sd.funding for s, sd in md.symbols.items()}
    cost = BrokerConfig.from_toml().break_even_offset()  # the venue the drill backtest uses

    def policy(directory: Path) -> Any:
        return policy_for(directory, tiers=tiers, funding=funding, round_trip_cost=cost)

    def delete(d: Path) -> str:
        (d / head_file).unlink()
        return f"{head_file} deleted"

    def corrupt(d: Path) -> str:
        corrupt_bytes(d / head_file)
        return f"{head_file} truncated"

    def stale(d: Path) -> str:
        for card_path in sorted(d.glob("*.json")):
            card = json.loads(card_path.read_text())
            card["valid_until_ms"], card["valid_until"] = start, iso_utc(start)
            write_card(card_path, card)
        return f"valid_until set to {iso_utc(start)}"

    damage: list[tuple[str, SkipReason, Callable[[Path], str]]] = [
        ("missing", SkipReason.MODEL_MISSING, delete),
        ("corrupt", SkipReason.MODEL_CORRUPT, corrupt),
        ("stale", SkipReason.MODEL_STALE, stale),
    ]
    cases = []
    for name, reason, fn in damage:
        copy = copy_artefact(models, workdir / name / "models")
        broken = fn(copy)
        cases.append(DrillCase(name, policy(copy), reason, broken))
    return run_drill(
        md,
        cases,
        policy(models),
        workdir / "runs",
        label=f"AIPolicy {intact.set_id}",
        equity=equity,
    )


def open_for_checks(db: Path, run_ids: list[str] | None) -> tuple[Any, str]:
    """A read-only journal for the journal and variation checks, and a problem ('' if none):
    an unknown `--run` id is named (the handle is then closed and None)."""
    from engine.journal.store import Journal

    journal = Journal.open_readonly(db)
    known = {r["id"] for r in journal.runs()}
    missing = [r for r in run_ids or [] if r not in known]
    if missing:
        journal.close()
        return None, f"no run {missing[0]} in {db}"
    return journal, ""
