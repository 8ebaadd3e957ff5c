"""Walk-forward training of the five heads, and the decision values derived from validation.

Timeline: everything at or after `train_end` is never read. Before it, `folds` validation blocks
sit at the end; each fold trains on the bars before its block minus a purge of one label horizon
(so no training label overlaps the block) and an embargo of `embargo_bars` more (so serially
correlated neighbours of the block do not train the model judged on it), and predicts the block.
The pooled out-of-fold predictions give the metrics, the direction calibration, the entry level
(chosen by net returns after the venue's fees, slippage and funding), the kill thresholds with
their graded reduce step (on the trades that entry level takes, net) and the universe's "auto"
cut-off; the final boosters are then fitted on the whole training period.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.domain import AutonomyZone
from engine.venues.simulated import BrokerConfig
from models import heads as H
from models.config import LADDER, TrainConfig
from models.errors import TrainDataError
from models.features import FeatureSpec, build_features, funding_arrays
from models.jobs import InProcess, Runner
from models.labels import (
    funding_over_horizon,
    net_trade_returns,
    relevance_grades,
    side_excursions,
    symbol_labels,
)
from models.registry import FORMAT_VERSION, qctl_version, save_model
from models.validity import iso_ms

MS_PER_DAY = 86_400_000

Progress = Callable[[str], None]


@dataclass
class TrainingSet:
    """Feature and label rows of the training period (no NaN), plus where they came from."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    bar_ms: int
    data_hash: str
    symbols: tuple[str, ...]
    train_end_ms: int
    funding_interval_ms: int  # the venue's funding period (0: no funding data)


@dataclass
class TrainResult:
    out_dir: Path
    set_id: str
    cards: dict[str, dict] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, dict]:
        return {name: card["metrics"] for name, card in self.cards.items()}


def bar_interval_ms(candles: Mapping[str, pd.DataFrame]) -> int:
    """The bar length: the most common gap between consecutive bars over all symbols."""
    diffs = np.concatenate([np.diff(c.index.to_numpy(np.int64)) for c in candles.values()])
    if len(diffs) == 0:
        raise TrainDataError("every symbol has fewer than two bars")
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


def default_train_end(candles: Mapping[str, pd.DataFrame], cfg: TrainConfig, bar_ms: int) -> int:
    """Keep the last `holdout_fraction` of the timeline out of training (rounded to a bar)."""
    first = min(int(c.index[0]) for c in candles.values() if len(c))
    last = max(int(c.index[-1]) for c in candles.values() if len(c)) + bar_ms
    end = first + int((last - first) * (1 - cfg.holdout_fraction))
    return end - (end - first) % bar_ms


def data_hash(
    candles: Mapping[str, pd.DataFrame], funding: Mapping[str, pd.DataFrame | None]
) -> str:
    """sha256 over the exact candle and funding values a model set was trained on."""
    digest = hashlib.sha256()
    for symbol in sorted(candles):
        digest.update(symbol.encode())
        frame = candles[symbol]
        digest.update(frame.index.to_numpy(np.int64).tobytes())
        digest.update(frame[["open", "high", "low", "close", "volume"]].to_numpy().tobytes())
        f = funding.get(symbol)
        if f is not None:
            digest.update(f.index.to_numpy(np.int64).tobytes())
            digest.update(f["funding_rate"].to_numpy(np.float64).tobytes())
    return digest.hexdigest()


def build_training_set(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None] | None,
    spec: FeatureSpec,
    cfg: TrainConfig,
    train_end_ms: int | None = None,
    holdout_symbols: Sequence[str] = (),
) -> TrainingSet:
    """Cut the data at `train_end_ms`, drop held-out symbols, join features and labels."""
    funding = funding or {}
    held = set(holdout_symbols)
    unknown = held - set(candles)
    if unknown:
        raise TrainDataError(f"held-out symbol(s) not in the data: {', '.join(sorted(unknown))}")
    kept = {s: c for s, c in candles.items() if s not in held}
    if not kept:
        raise TrainDataError("no symbols left to train on after --holdout-symbols")
    bar_ms = bar_interval_ms(kept)
    end = train_end_ms if train_end_ms is not None else default_train_end(kept, cfg, bar_ms)
    cut = {s: c.loc[c.index < end] for s, c in kept.items()}
    cut = {s: c for s, c in cut.items() if len(c) > spec.lookback_bars + cfg.horizon_bars}
    if not cut:
        raise TrainDataError(
            f"no symbol has more than {spec.lookback_bars + cfg.horizon_bars} bars before "
            f"{_iso(end)}; move --train-end later or give more data"
        )
    cut_funding = {
        s: f.loc[f.index < end] if (f := funding.get(s)) is not None else None for s in cut
    }
    features = build_features(cut, cut_funding, spec)
    labels = []
    for symbol, c in cut.items():
        lab = symbol_labels(c, cfg.horizon_bars)
        arrays = funding_arrays(cut_funding[symbol]) or (None, None)
        lab["funding_h"] = funding_over_horizon(
            c.index.to_numpy(np.int64), bar_ms, cfg.horizon_bars, *arrays
        )
        lab.insert(0, "low", c["low"].to_numpy())
        lab.insert(0, "high", c["high"].to_numpy())
        lab.insert(0, "close", c["close"].to_numpy())
        lab.insert(0, "timestamp", c.index.to_numpy(np.int64))
        lab.insert(0, "symbol", symbol)
        labels.append(lab.reset_index(drop=True))
    frame = features.merge(pd.concat(labels, ignore_index=True), on=["symbol", "timestamp"])
    names = spec.names()
    frame = frame.dropna(subset=[*names, "fwd_return"]).reset_index(drop=True)
    frame["vol_unit"] = frame["sigma"] * np.sqrt(cfg.horizon_bars)
    frame = frame[frame["vol_unit"] > 0].reset_index(drop=True)
    if frame.empty:
        raise TrainDataError("no complete feature and label rows before the training end")
    return TrainingSet(
        frame=frame,
        features=names,
        bar_ms=bar_ms,
        data_hash=data_hash(cut, cut_funding),
        symbols=tuple(sorted(cut)),
        train_end_ms=end,
        funding_interval_ms=funding_interval_ms(cut_funding),
    )


def funding_interval_ms(funding: Mapping[str, pd.DataFrame | None]) -> int:
    """The most common gap between funding settlements over all symbols (0: no funding)."""
    gaps = [np.diff(f.index.to_numpy(np.int64)) for f in funding.values() if f is not None]
    diffs = np.concatenate(gaps) if gaps else np.empty(0, dtype=np.int64)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        return 0
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


# ---------------------------------------------------------------------------------------------
# fitting


def _side_stack(rows: pd.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row twice: as a long (+1) and as a short (-1). Returns (inputs, side signs)."""
    x = rows[list(features)].to_numpy(np.float64)
    n = len(x)
    sides = np.r_[np.ones(n), -np.ones(n)]
    return np.column_stack([np.vstack([x, x]), sides]), sides


def _side_targets(rows: pd.DataFrame, sides: np.ndarray) -> dict[str, np.ndarray]:
    both = pd.concat([rows, rows], ignore_index=True)
    adverse, favourable = side_excursions(both, sides)
    unit = both["vol_unit"].to_numpy()
    collapsed = np.where(sides > 0, both["collapsed_long"], both["collapsed_short"])
    return {"adverse": adverse / unit, "favourable": favourable / unit, "kill": collapsed}


def _ranking_target(rows: pd.DataFrame, cfg: TrainConfig) -> np.ndarray:
    """How tradeable each symbol turned out: |forward return| in its own volatility units."""
    score = np.abs(rows["fwd_return"].to_numpy()) / rows["vol_unit"].to_numpy()
    return relevance_grades(score, rows["timestamp"].to_numpy(), cfg.rank_grades)


def fit_heads(
    rows: pd.DataFrame,
    features: Sequence[str],
    cfg: TrainConfig,
    progress: Progress | None = None,
) -> dict[str, lgb.Booster]:
    """Fit every head on `rows` (sorted by timestamp): one booster per head."""
    boosters: dict[str, lgb.Booster] = {}
    x = rows[list(features)].to_numpy(np.float64)
    x_side, sides = _side_stack(rows, features)
    targets = _side_targets(rows, sides)
    fwd = rows["fwd_return"].to_numpy()
    moved = fwd != 0
    group = rows.groupby("timestamp", sort=False).size().to_numpy()
    side_data = None
    for head in H.heads_for(cfg):
        names = head.input_names(features)
        if head.name == "universe":
            data = H.dataset(cfg, x, names, group=group)
            booster = H.fit(cfg, head, data, _ranking_target(rows, cfg))
        elif head.name == "direction":
            data = H.dataset(cfg, x[moved], names)
            booster = H.fit(cfg, head, data, (fwd[moved] > 0).astype(float))
        else:
            if side_data is None:
                side_data = H.dataset(cfg, x_side, names)
            booster = H.fit(cfg, head, side_data, targets[head.name.split("_", 1)[0]])
        boosters[head.name] = booster
        if progress is not None:
            progress(head.name)
    return boosters


def _strided(frame: pd.DataFrame, cfg: TrainConfig, bar_ms: int) -> pd.DataFrame:
    """Every `row_stride`-th bar, the same bars for every symbol (keeps ranking groups whole)."""
    keep = (frame["timestamp"].to_numpy() // bar_ms) % cfg.row_stride == 0
    return frame[keep]


def fold_bounds(timestamps: np.ndarray, cfg: TrainConfig) -> list[tuple[int, int]]:
    """[start, end) of each validation block: `folds` equal blocks at the end of the timeline."""
    ts = np.unique(timestamps)
    n = len(ts)
    bounds = []
    for k in range(cfg.folds):
        lo = int(n * (1 - (cfg.folds - k) * cfg.val_fraction))
        hi = int(n * (1 - (cfg.folds - k - 1) * cfg.val_fraction))
        if hi <= lo:
            raise TrainDataError("the training period is too short for the walk-forward folds")
        end = int(ts[hi]) if hi < n else int(ts[-1]) + 1
        bounds.append((int(ts[lo]), end))
    return bounds


def _predict_block(
    boosters: Mapping[str, lgb.Booster], rows: pd.DataFrame, features: Sequence[str]
) -> pd.DataFrame:
    """Out-of-fold predictions of every head for the block's rows (both sides for side heads)."""
    x = rows[list(features)].to_numpy(np.float64)
    n = len(x)
    out = {
        "rank_score": boosters["universe"].predict(x),
        "direction_raw": boosters["direction"].predict(x, raw_score=True),
    }
    for sign, tag in ((1.0, "long"), (-1.0, "short")):
        xs = np.column_stack([x, np.full(n, sign)])
        for name, booster in boosters.items():
            if name not in ("universe", "direction"):
                out[f"{name}_{tag}"] = booster.predict(xs)
    return pd.DataFrame(out, index=rows.index)


# ---------------------------------------------------------------------------------------------
# decision values chosen on the validation folds


def auto_count_cutoff(score: np.ndarray, realised: np.ndarray, bins: int) -> float:
    """Ranker score from which symbols turned out more tradeable than average, on validation.

    Scores are cut into quantile bins; the cut-off is the lower edge of the lowest bin from which
    every higher bin's mean realised tradeability beats the overall mean. With no such bin the
    top bin's edge is used, so "auto" then takes the fewest symbols allowed.
    """
    edges = np.quantile(score, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    overall = realised.mean()
    means = np.array(
        [realised[idx == b].mean() if np.any(idx == b) else -np.inf for b in range(bins)]
    )
    good = means >= overall
    lowest = bins - 1
    for b in range(bins - 1, -1, -1):
        if not good[b]:
            break
        lowest = b
    return float(edges[lowest])


@dataclass(frozen=True)
class KillTrades:
    """The validation trades the kill levels are chosen on, one per validation bar.

    Each opens at the bar's close on the side the calibrated direction head picks and is
    followed for the label horizon: `kill_p[i, k]` is the kill head's probability for that side
    k + 1 bars later (-inf past the symbol's data), `path[i, k]` the trade's return if closed
    there, `held[i]` its return held to the horizon.
    """

    kill_p: np.ndarray
    path: np.ndarray
    held: np.ndarray
    regime: np.ndarray

    def first_above(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Per trade: whether the kill probability ever passes `level`, and the first bar it does."""
        hit = self.kill_p > level
        return hit.any(axis=1), np.argmax(hit, axis=1)


def kill_trades(
    val: pd.DataFrame,
    p_up: np.ndarray,
    cfg: TrainConfig,
    bar_ms: int,
    cost: float = 0.0,
    entered: np.ndarray | None = None,
) -> KillTrades:
    """Build the validation trades (see `KillTrades`) from the pooled out-of-fold predictions.

    Returns are net of the round-trip `cost`; `entered` (a mask in `val`'s row order) keeps only
    the trades the entry rule takes, so the exits are chosen on the trades that would exist.
    """
    order = np.lexsort((val["timestamp"].to_numpy(), val["symbol"].to_numpy()))
    v = val.iloc[order]
    p = p_up[order]
    n, horizon = len(v), cfg.horizon_bars
    side = np.where(p > 1 - p, 1.0, -1.0)
    sym = v["symbol"].to_numpy()
    ts = v["timestamp"].to_numpy()
    close = v["close"].to_numpy()
    steps = np.arange(1, horizon + 1)
    idx = np.arange(n)[:, None] + steps[None, :]
    inside = idx < n
    idx = np.minimum(idx, n - 1)
    same = inside & (sym[idx] == sym[:, None]) & (ts[idx] - ts[:, None] == steps * bar_ms)
    kill_p = np.where(
        side[:, None] > 0, v["kill_long"].to_numpy()[idx], v["kill_short"].to_numpy()[idx]
    )
    keep = slice(None) if entered is None else np.asarray(entered, dtype=bool)[order]
    return KillTrades(
        kill_p=np.where(same, kill_p, -np.inf)[keep],
        path=(side[:, None] * (close[idx] / close[:, None] - 1) - cost)[keep],
        held=(side * np.expm1(v["fwd_return"].to_numpy()) - cost)[keep],
        regime=v["regime"].to_numpy()[keep],
    )


def kill_grid(cfg: TrainConfig, zone: AutonomyZone) -> np.ndarray:
    """Candidate kill levels: `grid_points` evenly spaced over the zone's kill range."""
    grid = np.linspace(zone.min_kill_threshold, zone.max_kill_threshold, cfg.grid_points)
    return np.round(grid, 12)  # 0.6, not 0.6000000000000001, on the cards


def reduce_fraction_grid(cfg: TrainConfig) -> np.ndarray:
    """Candidate kill-reduce fractions: `grid_points` evenly spaced inside (0, 1)."""
    return np.round(np.arange(1, cfg.grid_points + 1) / (cfg.grid_points + 1), 12)


def _regime_masks(trades: KillTrades, cfg: TrainConfig) -> dict[str, np.ndarray | None]:
    """Each regime's trades; None for a regime with too few trades (it falls back to "all")."""
    out: dict[str, np.ndarray | None] = {}
    regime = trades.regime
    for r in np.unique(regime[np.isfinite(regime)]):
        mask = regime == r
        out[str(int(r))] = mask if mask.sum() >= cfg.min_data_in_leaf else None
    return out


def kill_thresholds(
    val: pd.DataFrame,
    p_up: np.ndarray,
    cfg: TrainConfig,
    zone: AutonomyZone,
    bar_ms: int,
    trades: KillTrades | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Kill threshold per regime that maximised the mean trade return on validation.

    Each validation bar opens a trade on the side the calibrated direction head picks; the trade
    closes at the first later bar (within the horizon) whose kill probability passes the
    threshold, else at the horizon. Regimes with fewer than `min_data_in_leaf` trades use the
    threshold chosen over all trades.
    """
    t = trades if trades is not None else kill_trades(val, p_up, cfg, bar_ms)
    grid = kill_grid(cfg, zone)
    rows = np.arange(len(t.held))
    returns = np.empty((len(grid), len(rows)))
    for g, threshold in enumerate(grid):
        hit, first = t.first_above(threshold)
        returns[g] = np.where(hit, t.path[rows, first], t.held)

    best_all = int(np.argmax(returns.mean(axis=1)))
    thresholds = {"all": float(grid[best_all])}
    expectancy = {"no_kill": float(t.held.mean()), "all": float(returns[best_all].mean())}
    for key, mask in _regime_masks(t, cfg).items():
        if mask is None:
            thresholds[key] = thresholds["all"]
            continue
        best = int(np.argmax(returns[:, mask].mean(axis=1)))
        thresholds[key] = float(grid[best])
        expectancy[key] = float(returns[best, mask].mean())
    return thresholds, expectancy


@dataclass(frozen=True)
class KillReduce:
    """The graded kill step chosen on validation, per regime (keys as the kill thresholds')."""

    thresholds: dict[str, float]
    fracs: dict[str, float]
    expectancy: dict[str, float]


def kill_reduce_levels(
    trades: KillTrades,
    kill: Mapping[str, float],
    cfg: TrainConfig,
    zone: AutonomyZone,
) -> KillReduce:
    """Reduce level and fraction per regime that maximised the mean trade return on validation.

    Next to the regime's chosen kill threshold, each validation trade is reduced by the fraction
    at the first bar whose kill probability passes the reduce level (if that comes before the
    kill), closed at the first bar past the kill threshold, else at the horizon. Candidates:
    the kill grid's levels up to the kill threshold (the threshold itself means "never reduce")
    times `reduce_fraction_grid`. Ties go to the least intervention (highest level, smallest
    fraction). Regimes with fewer than `min_data_in_leaf` trades use the values over all trades.
    """
    grid = kill_grid(cfg, zone)
    fracs = reduce_fraction_grid(cfg)
    rows = np.arange(len(trades.held))
    horizon = trades.kill_p.shape[1]
    firsts = [trades.first_above(level) for level in grid]

    def best(mask: np.ndarray | None, threshold: float) -> tuple[float, float, float]:
        k = int(np.argmin(np.abs(grid - threshold)))
        k_hit, k_first = firsts[k]
        exit_return = np.where(k_hit, trades.path[rows, k_first], trades.held)
        kill_at = np.where(k_hit, k_first, horizon)
        base = float((exit_return if mask is None else exit_return[mask]).mean())
        top = (-np.inf, float(grid[k]), float(fracs[0]))
        for g in range(k, -1, -1):  # from "never reduce" down: ties keep the higher level
            hit, first = firsts[g]
            gain = np.where(hit & (first < kill_at), trades.path[rows, first] - exit_return, 0.0)
            mean_gain = float(gain.mean() if mask is None else gain[mask].mean())
            for f in fracs:
                value = base + float(f) * mean_gain
                if value > top[0]:
                    top = (value, float(grid[g]), float(f))
        return top

    value, level, frac = best(None, kill["all"])
    out = KillReduce({"all": level}, {"all": frac}, {"all": value})
    for key, mask in _regime_masks(trades, cfg).items():
        if mask is None:
            out.thresholds[key], out.fracs[key] = level, frac
            continue
        v, out.thresholds[key], out.fracs[key] = best(mask, kill[key])
        out.expectancy[key] = v
    return out


_iso = iso_ms  # the cards' one date format (models.validity checks it)


@dataclass(frozen=True)
class EntryTrades:
    """One validation trade per row, on the side the calibrated direction head picks.

    `confidence`: the calibrated probability of that side; `edge`: its realised price return in
    volatility units (gross); `net`: its realised return net of the round-trip cost and the
    funding it paid; `funding_now`: the funding the policy would expect at entry (the latest
    print times the settlements in the horizon), signed for the side.
    """

    confidence: np.ndarray
    vol_unit: np.ndarray
    edge: np.ndarray
    net: np.ndarray
    funding_now: np.ndarray
    fold: np.ndarray
    ts: np.ndarray


def entry_trades(
    val: pd.DataFrame,
    p_up: np.ndarray,
    cost: float,
    settlements: float,
    fold_of: np.ndarray,
) -> EntryTrades:
    """The validation trades the entry threshold is chosen on (see `EntryTrades`)."""
    side = np.where(p_up > 1 - p_up, 1.0, -1.0)
    unit = val["vol_unit"].to_numpy()
    fwd = val["fwd_return"].to_numpy()
    rate = val["funding_rate"].to_numpy() if "funding_rate" in val else np.zeros(len(val))
    return EntryTrades(
        confidence=np.where(side > 0, p_up, 1 - p_up),
        vol_unit=unit,
        edge=side * np.expm1(fwd) / unit,
        net=net_trade_returns(fwd, val["funding_h"].to_numpy(), side, cost),
        funding_now=side * rate * settlements,
        fold=fold_of,
        ts=val["timestamp"].to_numpy(),
    )


def predicted_net(
    t: EntryTrades, knots: tuple[list[float], list[float]], cost: float
) -> np.ndarray:
    """What the policy expects a trade to return after costs: the validation edge at its
    confidence, scaled by its volatility, minus the round trip and the expected funding."""
    return H.isotonic_apply(t.confidence, *knots) * t.vol_unit - cost - t.funding_now


def choose_entry(t: EntryTrades, cfg: TrainConfig, cost: float) -> dict[str, object]:
    """The entry rule chosen on validation, by net figures only.

    The edge map (calibrated confidence -> realised edge, isotonic) is cross-fitted: each fold's
    trades are judged with the map of the other folds. Candidate thresholds are `grid_points`
    quantiles of the confidence; a trade is taken when its confidence reaches the threshold and
    its predicted net return is positive. The threshold with the best t-statistic of realised net
    returns wins, if its mean is positive over at least `min_data_in_leaf` trades, its
    t-statistic reaches `min_entry_t` and its trades' net mean is positive in at least
    `entry_fold_share` of the validation folds (an edge of one stretch of time only is not an
    edge); otherwise there is no threshold (`min_confidence` None): the models enter nothing.
    """
    folds = np.unique(t.fold)
    knots = H.isotonic_fit(t.confidence, t.edge, cfg.edge_bins)
    pred = np.empty(len(t.net))
    for k in folds:
        inside = t.fold == k
        other = ~inside if len(folds) > 1 else inside
        k_knots = H.isotonic_fit(t.confidence[other], t.edge[other], cfg.edge_bins)
        pred[inside] = predicted_net(
            EntryTrades(*(getattr(t, f)[inside] for f in EntryTrades.__dataclass_fields__)),
            k_knots,
            cost,
        )
    levels = np.linspace(0, 1, cfg.grid_points + 1)[:-1]
    candidates = np.unique(np.round(np.quantile(t.confidence, levels), 6))
    best: dict[str, object] | None = None
    tried = []
    for theta in candidates:
        taken = (t.confidence >= theta) & (pred > 0)
        n = int(taken.sum())
        if n < cfg.min_data_in_leaf:
            continue
        r = t.net[taken]
        sd = float(r.std())
        mean = float(r.mean())
        by_trade = t_by_trades(r, cfg.horizon_bars)
        by_time = t_by_entry_time(r, t.ts[taken], cfg.horizon_bars)
        stat = by_time if cfg.entry_evidence == "entry_times" else by_trade
        row = {
            "min_confidence": float(theta),
            "trades": n,
            "share_taken": n / len(t.net),
            "net_mean": mean,
            "net_sharpe_per_trade": mean / sd if sd > 0 else 0.0,
            "t_stat": float(stat),
            "t_stat_trades": float(by_trade),
            "t_stat_by_time": float(by_time),
            "net_mean_by_fold": [
                float(t.net[taken & (t.fold == k)].mean()) if np.any(taken & (t.fold == k)) else 0.0
                for k in folds
            ],
        }
        row["positive_fold_share"] = float(np.mean([m > 0 for m in row["net_mean_by_fold"]]))
        tried.append(row)
        passes = mean > 0 and stat >= cfg.min_entry_t
        passes = passes and row["positive_fold_share"] >= cfg.entry_fold_share
        if passes and (best is None or stat > best["t_stat"]):
            best = row
    everything = {
        "trades": len(t.net),
        "net_mean": float(t.net.mean()),
        "gross_mean": float((t.net + cost).mean()),
    }
    chosen = (
        (t.confidence >= best["min_confidence"]) & (pred > 0)
        if best is not None
        else np.zeros(len(t.net), dtype=bool)
    )
    by_fold = [
        {
            "fold": int(k),
            "ai": fold_figures(t, chosen & (t.fold == k), cost),
            "every_signal": fold_figures(t, t.fold == k, cost),
        }
        for k in folds
    ]
    return {
        "min_confidence": None if best is None else best["min_confidence"],
        "validation": best,
        "all_validation_trades": everything,
        "candidates": len(tried),
        "criterion": (
            "t-statistic of the mean net trade of each entry time (entry times / horizon_bars)"
            if cfg.entry_evidence == "entry_times"
            else "t-statistic of net trade returns (n / horizon_bars)"
        )
        + ", mean > 0, "
        f"t >= {cfg.min_entry_t}, a positive net mean in at least {cfg.entry_fold_share:.0%} "
        "of the validation folds",
        "edge_knots": {"confidence": knots[0], "edge": knots[1]},
        "by_fold": by_fold,
    }


def t_by_trades(net: np.ndarray, horizon: float) -> float:
    """t-statistic of the mean net trade; trades opened on consecutive bars overlap for a
    horizon, so n trades count as n / horizon."""
    sd = float(net.std()) if len(net) else 0.0
    return float(net.mean() / sd * np.sqrt(len(net) / horizon)) if sd > 0 else 0.0


def t_by_entry_time(net: np.ndarray, ts: np.ndarray, horizon: float) -> float:
    """t-statistic of the mean net trade of each entry time, entry times counted / horizon.

    The symbols move together: k trades opened at one time are closer to one bet than to k, so
    this counts entry times (each the book of trades opened then), not trades."""
    if len(net) == 0:
        return 0.0
    book = pd.Series(net).groupby(ts).mean().to_numpy()
    sd = float(book.std())
    return float(book.mean() / sd * np.sqrt(len(book) / horizon)) if sd > 0 else 0.0


def fold_figures(t: EntryTrades, taken: np.ndarray, cost: float, points: int = 60) -> dict:
    """Net figures of the validation trades `taken` in one fold, in their row order.

    Per trade, as a fraction of its notional: mean, Sharpe, sum; the share of it that went to
    fees and slippage and to funding; and the running sum (at most `points` samples) for a plot.
    """
    order = np.argsort(t.ts[taken], kind="stable")  # the running sum in time order
    r = t.net[taken][order]
    n = len(r)
    if n == 0:
        return {"trades": 0, "net_sum": 0.0, "net_mean": 0.0, "net_sharpe": 0.0,
                "costs": 0.0, "funding": 0.0, "curve": [0.0]}  # fmt: skip
    gross = (t.edge[taken] * t.vol_unit[taken])[order]
    funding = gross - cost - r  # what the side paid (received: negative)
    curve = np.cumsum(r)
    step = max(1, n // points)
    sd = float(r.std())
    return {
        "trades": n,
        "net_sum": float(r.sum()),
        "net_mean": float(r.mean()),
        "net_sharpe": float(r.mean() / sd) if sd > 0 else 0.0,
        "costs": cost * n,
        "funding": float(funding.sum()),
        "curve": [0.0, *curve[step - 1 :: step].tolist()],
    }


@dataclass(frozen=True)
class LadderTrades:
    """Validation trades for the harvest ladder, one per row, as the exit controller runs them.

    Per trade: its side, the predicted stop distance and favourable excursions (price fractions),
    and its path over the horizon relative to the entry close, in the side's favour: `close`,
    `best` (intrabar, high for a long) and `worst` (intrabar, low for a long); NaN past the
    symbol's data. `funding`: what the side paid over the horizon.
    """

    stop: np.ndarray
    favourable: np.ndarray  # (trades, 4): lock, T1, T2, T3 as price fractions
    close: np.ndarray
    best: np.ndarray
    worst: np.ndarray
    funding: np.ndarray


def ladder_trades(
    val: pd.DataFrame, p_up: np.ndarray, cfg: TrainConfig, bar_ms: int, entered: np.ndarray | None
) -> LadderTrades:
    """Build `LadderTrades` from the pooled out-of-fold predictions (`entered`: rows taken)."""
    order = np.lexsort((val["timestamp"].to_numpy(), val["symbol"].to_numpy()))
    if entered is not None:
        keep_rows = np.asarray(entered, dtype=bool)[order]
    else:
        keep_rows = np.ones(len(order), dtype=bool)
    v = val.iloc[order]
    p = p_up[order]
    side = np.where(p > 1 - p, 1.0, -1.0)  # the side the direction head favours
    n, horizon = len(v), cfg.horizon_bars
    sym, ts = v["symbol"].to_numpy(), v["timestamp"].to_numpy()
    close, high, low = (v[k].to_numpy(np.float64) for k in ("close", "high", "low"))
    steps = np.arange(1, horizon + 1)
    rows = np.flatnonzero(keep_rows)
    idx = rows[:, None] + steps[None, :]
    inside = idx < n
    idx = np.minimum(idx, n - 1)
    same = inside & (sym[idx] == sym[rows, None]) & (ts[idx] - ts[rows, None] == steps * bar_ms)
    s = side[rows, None]
    entry = close[rows, None]
    up, down = high[idx] / entry - 1, low[idx] / entry - 1
    unit = v["vol_unit"].to_numpy()[rows]
    pick = side[rows] > 0

    def sided(name: str) -> np.ndarray:
        return np.where(
            pick, v[f"{name}_long"].to_numpy()[rows], v[f"{name}_short"].to_numpy()[rows]
        )

    fav = np.column_stack([sided(f"favourable_{role}") for role in LADDER]) * unit[:, None]
    nan = np.nan
    return LadderTrades(
        stop=sided("adverse") * unit,
        favourable=fav,
        close=np.where(same, s * (close[idx] / entry - 1), nan),
        best=np.where(same, np.where(s > 0, up, -down), nan),
        worst=np.where(same, np.where(s > 0, down, -up), nan),
        funding=side[rows] * v["funding_h"].to_numpy()[rows],
    )


def simulate_ladder(
    t: LadderTrades, scale: float, zone: AutonomyZone, close_fracs: tuple[float, float], cost: float
) -> np.ndarray:
    """Net return of each trade under the ladder at `scale` times the predicted excursions.

    What the policy and the exit controller do: rungs in R (R = the predicted stop) clipped into
    the zone and kept ascending; the stop and the take-profit at T3 fire intrabar (the stop
    first: the pessimistic order inside a bar); at each bar close T1 and T2 close their fraction
    of what is open and the lock moves the stop to break-even-plus (the round-trip cost); what is
    left closes at the horizon (or at the symbol's last bar). Net of the round trip and funding.
    """
    stop = t.stop
    ok = np.isfinite(stop) & (stop > 0) & (stop < 1)
    r = np.clip(scale * t.favourable / np.where(ok, stop, 1.0)[:, None], zone.min_harvest_r,
                zone.max_harvest_r)  # fmt: skip
    r = np.maximum.accumulate(r[:, 1:], axis=1)  # T1 <= T2 <= T3 (lock stays apart)
    lock = np.clip(scale * t.favourable[:, 0] / np.where(ok, stop, 1.0), zone.min_harvest_r,
                   zone.max_harvest_r) * stop  # fmt: skip
    t1, t2, t3 = (r[:, i] * stop for i in range(3))
    n, horizon = t.close.shape
    open_ = np.where(ok, 1.0, 0.0)
    pnl = np.zeros(n)
    floor = -stop.copy()
    stage = np.zeros(n, dtype=int)
    last = np.zeros(n)
    for j in range(horizon):
        c, hi, lo = t.close[:, j], t.best[:, j], t.worst[:, j]
        live = (open_ > 0) & np.isfinite(c)
        hit = live & (lo <= floor)
        pnl[hit] += open_[hit] * floor[hit]
        open_[hit] = 0.0
        live &= ~hit
        tp = live & (hi >= t3)
        pnl[tp] += open_[tp] * t3[tp]
        open_[tp] = 0.0
        live &= ~tp
        for rung, frac, level in ((1, close_fracs[0], t1), (2, close_fracs[1], t2)):
            step = live & (stage < rung) & (c >= level)
            pnl[step] += open_[step] * frac * c[step]
            open_[step] *= 1 - frac
            stage[step] = rung
        locked = live & (c >= lock)
        floor[locked] = np.maximum(floor[locked], cost)
        last = np.where(np.isfinite(c), c, last)
    pnl += open_ * last
    return np.where(ok, pnl - cost - t.funding, 0.0)


def choose_ladder(
    t: LadderTrades,
    cfg: TrainConfig,
    zone: AutonomyZone,
    close_fracs: tuple[float, float],
    cost: float,
) -> dict[str, object]:
    """The ladder scale with the best mean net return per validation trade (ties: the earlier
    candidate in `ladder_scales`), with every candidate's figures.

    A scale under which T1 lands on the same zone bound for every validation trade decides
    nothing (the ladder would be a constant, which `qctl verify`'s variation check fails): it
    is chosen only when no candidate's T1 varies."""
    rows = []
    stop = t.stop
    ok = np.isfinite(stop) & (stop > 0) & (stop < 1)
    for scale in cfg.ladder_scales:
        net = simulate_ladder(t, float(scale), zone, close_fracs, cost)
        sd = float(net.std()) if len(net) else 0.0
        t1_r = np.clip(scale * t.favourable[ok, 1] / stop[ok], zone.min_harvest_r,
                       zone.max_harvest_r)  # fmt: skip
        rows.append({"scale": float(scale), "net_mean": float(net.mean()) if len(net) else 0.0,
                     "net_sharpe_per_trade": float(net.mean() / sd) if sd > 0 else 0.0,
                     "t1_varies": bool(len(np.unique(t1_r)) > 1)})  # fmt: skip
    eligible = [i for i, row in enumerate(rows) if row["t1_varies"]] or list(range(len(rows)))
    best = max(eligible, key=lambda i: (rows[i]["net_mean"], -i))
    return {**rows[best], "trades": len(t.stop), "candidates": rows}


def _validation_metrics(
    val: pd.DataFrame,
    cfg: TrainConfig,
    zone: AutonomyZone,
    bar_ms: int,
    fold_of: np.ndarray,
    cost: float,
    settlements: float,
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per-head metrics on the pooled validation folds, and each head's decision outputs.

    `cost`: the venue's round trip (price fraction); `settlements`: funding settlements per
    holding horizon. Every threshold is chosen on returns net of both.
    """
    metrics: dict[str, dict] = {}
    outputs: dict[str, dict] = {}
    ts = val["timestamp"].to_numpy()
    unit = val["vol_unit"].to_numpy()
    fwd = val["fwd_return"].to_numpy()

    realised = np.abs(fwd) / unit
    grades = relevance_grades(realised, ts, cfg.rank_grades)
    score = val["rank_score"].to_numpy()
    rng = np.random.default_rng(cfg.seed)
    metrics["universe"] = {
        f"ndcg@{cfg.ndcg_at}": H.ndcg(grades, score, ts, cfg.ndcg_at),
        f"ndcg@{cfg.ndcg_at}_random": H.ndcg(grades, rng.random(len(score)), ts, cfg.ndcg_at),
    }
    outputs["universe"] = {
        "auto_score_cutoff": auto_count_cutoff(score, realised, cfg.auto_count_bins)
    }

    moved = fwd != 0
    y = (fwd[moved] > 0).astype(float)
    raw = val["direction_raw"].to_numpy()
    # Platt: the slope only, around the validation median: confidence then says how well the
    # head ranks ups against downs, not how much the validation months happened to drift.
    # Isotonic: the validation frequencies themselves, drift included.
    centre = float(np.median(raw[moved]))
    a, _ = H.platt_fit(raw[moved] - centre, y, fit_intercept=False)
    b = -a * centre
    iso_x, iso_y = H.isotonic_fit(raw[moved], y)
    if cfg.calibration == "isotonic":
        p_up = H.isotonic_apply(raw, iso_x, iso_y)
    else:
        p_up = H.platt_apply(raw, a, b)
    entry = choose_entry(entry_trades(val, p_up, cost, settlements, fold_of), cfg, cost)
    by_fold = entry.pop("by_fold")
    per_fold = [
        H.auc(y[fold_of[moved] == k], raw[moved][fold_of[moved] == k]) for k in np.unique(fold_of)
    ]
    metrics["direction"] = {
        "auc": H.auc(y, raw[moved]),
        "auc_by_fold": per_fold,
        "log_loss": H.log_loss(y, p_up[moved]),
        "log_loss_base_rate": H.log_loss(y, np.full(len(y), y.mean())),
        "brier": H.brier(y, p_up[moved]),
        "brier_base_rate": H.brier(y, np.full(len(y), y.mean())),
        "up_rate": float(y.mean()),
        "entry": entry["validation"],
        "all_validation_trades": entry["all_validation_trades"],
        "by_fold": by_fold,
    }
    outputs["direction"] = {
        "calibration": cfg.calibration,
        "platt_a": a,
        "platt_b": b,
        "isotonic_x": iso_x,
        "isotonic_y": iso_y,
        "kelly_fraction": cfg.kelly_fraction,
        "horizon_bars": cfg.horizon_bars,
        "min_confidence": entry["min_confidence"],
        "entry_criterion": entry["criterion"],
        "edge_knots": entry["edge_knots"],
        "funding_settlements_per_horizon": settlements,
    }

    sides = np.r_[np.ones(len(val)), -np.ones(len(val))]
    both = pd.concat([val, val], ignore_index=True)
    adverse, favourable = side_excursions(both, sides)
    unit2 = np.r_[unit, unit]
    quantile_heads = [("adverse", cfg.adverse_quantile, adverse, "stop")]
    quantile_heads += [
        (f"favourable_{role}", q, favourable, role)
        for role, q in zip(LADDER, cfg.favourable_quantiles, strict=True)
    ]
    for name, q, target, role in quantile_heads:
        pred = np.r_[val[f"{name}_long"].to_numpy(), val[f"{name}_short"].to_numpy()]
        truth = target / unit2
        metrics[name] = {
            "pinball": H.pinball(truth, pred, q),
            "pinball_constant": H.pinball(truth, np.full(len(truth), np.quantile(truth, q)), q),
            "coverage": float(np.mean(truth <= pred)),
            "quantile": q,
        }
        outputs[name] = {"quantile": q, "role": role, "horizon_bars": cfg.horizon_bars}

    collapsed = np.r_[val["collapsed_long"].to_numpy(), val["collapsed_short"].to_numpy()]
    kill_p = np.r_[val["kill_long"].to_numpy(), val["kill_short"].to_numpy()]
    entered = None
    if entry["min_confidence"] is not None:
        t = entry_trades(val, p_up, cost, settlements, fold_of)
        knots = (entry["edge_knots"]["confidence"], entry["edge_knots"]["edge"])
        mask = (t.confidence >= entry["min_confidence"]) & (predicted_net(t, knots, cost) > 0)
        entered = mask if mask.sum() >= cfg.min_data_in_leaf else None
    from models.policy import harvest_close_fracs

    q = dict(zip(LADDER, cfg.favourable_quantiles, strict=True))
    ladder = choose_ladder(
        ladder_trades(val, p_up, cfg, bar_ms, entered),
        cfg,
        zone,
        harvest_close_fracs(q["t1"], q["t2"], q["t3"]),
        cost,
    )
    ladder["chosen_on"] = (
        "entered trades, net of costs" if entered is not None else "every signal, net of costs"
    )
    for role in LADDER:
        outputs[f"favourable_{role}"]["ladder_scale"] = ladder["scale"]
        metrics[f"favourable_{role}"]["ladder"] = ladder
    trades = kill_trades(val, p_up, cfg, bar_ms, cost, entered)
    thresholds, expectancy = kill_thresholds(val, p_up, cfg, zone, bar_ms, trades)
    reduce = kill_reduce_levels(trades, thresholds, cfg, zone)
    metrics["kill"] = {
        "auc": H.auc(collapsed, kill_p),
        "expectancy": expectancy,
        "expectancy_with_reduce": reduce.expectancy,
        "collapsed_rate": float(collapsed.mean()),
        "chosen_on": "entered trades, net of costs" if entered is not None else "all, net",
        "trades": len(trades.held),
    }
    outputs["kill"] = {
        "thresholds_by_regime": thresholds,
        "reduce_thresholds_by_regime": reduce.thresholds,
        "reduce_fracs_by_regime": reduce.fracs,
    }
    return metrics, outputs


def fold_jobs(ts_set: TrainingSet, cfg: TrainConfig) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(training rows, validation block) of each walk-forward fold.

    Training rows end `horizon_bars` (purge: no label reaches into the block) plus
    `embargo_bars` (embargo) before the block starts.
    """
    frame, bar_ms = ts_set.frame, ts_set.bar_ms
    out = []
    for lo, hi in fold_bounds(frame["timestamp"].to_numpy(), cfg):
        gap_start = lo - (cfg.horizon_bars + cfg.embargo_bars) * bar_ms
        rows = _strided(frame[frame["timestamp"] < gap_start], cfg, bar_ms)
        if rows.empty:
            raise TrainDataError("the first walk-forward fold has no training rows before it")
        out.append((rows, frame[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]))
    return out


def fit_job(
    rows: pd.DataFrame, block: pd.DataFrame | None, features: Sequence[str], cfg: TrainConfig
) -> pd.DataFrame | dict[str, str]:
    """One job: fit every head on `rows`; with a validation `block`, return the block with the
    heads' out-of-fold predictions, else the boosters as LightGBM model text."""
    boosters = fit_heads(rows, features, cfg)
    if block is None:
        return {name: b.model_to_string() for name, b in boosters.items()}
    return pd.concat([block, _predict_block(boosters, block, features)], axis=1)


def validation_outputs(
    val: pd.DataFrame, ts_set: TrainingSet, cfg: TrainConfig, zone: AutonomyZone, cost: float
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Metrics and decision outputs from the pooled out-of-fold predictions (`val`)."""
    interval = ts_set.funding_interval_ms
    settlements = cfg.horizon_bars * ts_set.bar_ms / interval if interval else 0.0
    return _validation_metrics(
        val, cfg, zone, ts_set.bar_ms, val["fold"].to_numpy(), cost, settlements
    )


def count_steps(cfg: TrainConfig) -> int:
    """Progress steps of one training run: every booster of every fold and of the final fit."""
    return (cfg.folds + 1) * len(H.heads_for(cfg)) + 1


def train_models(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None] | None,
    out_dir: str | Path,
    cfg: TrainConfig | None = None,
    spec: FeatureSpec | None = None,
    *,
    holdout_symbols: Sequence[str] = (),
    train_end_ms: int | None = None,
    zone: AutonomyZone | None = None,
    progress: Progress | None = None,
    created_at: datetime | None = None,
    broker: BrokerConfig | None = None,
    runner: Runner | None = None,
) -> TrainResult:
    """Train, validate and store a model set (LightGBM text models + JSON cards) in `out_dir`.

    `broker`: the venue whose taker fee and slippage every label and decision is net of
    (default: the packaged venue file, as `qctl backtest` uses). `runner`: where the fold jobs
    and the final fit run (default: here, one after the other; `models.jobs.DaskRunner` for
    Dask); the model set is the same either way.
    """
    cfg = cfg or TrainConfig.defaults()
    broker = broker or BrokerConfig.from_toml()
    costs = {
        "venue": broker.venue,
        "taker_fee": broker.taker_fee,
        "slippage": broker.slippage,
        "round_trip": broker.break_even_offset(),
    }
    spec = spec or FeatureSpec()
    zone = zone or AutonomyZone()
    ts_set = build_training_set(candles, funding, spec, cfg, train_end_ms, holdout_symbols)
    frame, features = ts_set.frame, ts_set.features

    runner = runner or InProcess()
    jobs: list[tuple] = [(rows, block, features, cfg) for rows, block in fold_jobs(ts_set, cfg)]
    final_rows = _strided(frame, cfg, ts_set.bar_ms)
    jobs.append((final_rows, None, features, cfg))
    heads = len(H.heads_for(cfg))

    def done(i: int) -> None:
        if progress is not None:
            label = f"fold {i + 1}" if i < len(jobs) - 1 else "final fit"
            for _ in range(heads):
                progress(label)

    results = runner.map(fit_job, jobs, done)
    val = pd.concat([part.assign(fold=k) for k, part in enumerate(results[:-1])], ignore_index=True)
    metrics, outputs = validation_outputs(val, ts_set, cfg, zone, costs["round_trip"])
    if progress is not None:
        progress("validation")
    boosters = {name: lgb.Booster(model_str=text) for name, text in results[-1].items()}

    feature_hash = spec.version()
    set_id = hashlib.sha256(
        json.dumps(
            [ts_set.data_hash, feature_hash, cfg.as_dict(), ts_set.train_end_ms, costs],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    created = created_at or datetime.now(UTC)
    x = frame[list(features)]
    ranges = {name: [float(x[name].min()), float(x[name].max())] for name in features}
    start_ms = int(frame["timestamp"].min())
    valid_until = ts_set.train_end_ms + cfg.valid_days * MS_PER_DAY
    result = TrainResult(out_dir=Path(out_dir), set_id=set_id)
    for head in H.heads_for(cfg):
        card = {
            "format_version": FORMAT_VERSION,
            "name": head.name,
            "objective": head.objective,
            "set_id": set_id,
            "features": list(features),
            "inputs": head.input_names(features),
            "feature_hash": feature_hash,
            "feature_spec": spec.params(),
            "feature_ranges": ranges,
            "training_window": {
                "start_ms": start_ms,
                "end_ms": ts_set.train_end_ms,
                "start": _iso(start_ms),
                "end": _iso(ts_set.train_end_ms),
                "bar_ms": ts_set.bar_ms,
                "rows": len(final_rows),
            },
            "symbols": list(ts_set.symbols),
            "holdout_symbols": sorted(holdout_symbols),
            "data_hash": ts_set.data_hash,
            "metrics": metrics[head.name],
            "outputs": outputs[head.name],
            "train_config": cfg.as_dict(),
            "costs": costs,
            "seed": cfg.seed,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valid_until_ms": valid_until,
            "valid_until": _iso(valid_until),
            "qctl_version": qctl_version(),
        }
        result.cards[head.name] = save_model(result.out_dir, head.name, boosters[head.name], card)
    return result
