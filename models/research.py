"""Candidate trading ideas judged on the validation folds, net of costs, before any is built.

Each idea says, for every symbol-bar of the training period, whether it would trade and on which
side; its trades are judged by the same evidence bar as the direction head's entry level (a
positive net mean, a t-statistic of at least `min_entry_t` with overlapping trades counted as
n / overlap (see `judge`), a positive net mean in at least `entry_fold_share` of the validation folds, and at
least `min_data_in_leaf` trades). Ideas with a score (the model-based ones) try the same
confidence-quantile levels as `choose_entry` and keep the one with the best t-statistic that
passes; if none passes, the idea would not trade.

The held-out figure is computed once per idea, after the validation figures are fixed, on the
held-out symbols from the training end to the end of the data: every trade the idea signals
there, and the trades the validation choice would take (none when it did not pass). Nothing is
chosen on it. Trades are held to the horizon (the legacy rule: through its own stop,
take-profit and ladder), net of the round trip and funding: a proxy, not the engine's backtest.

Ideas (their parameters come from the legacy policy file, the feature spec and `IdeaParams`):
- `legacy`: the legacy rule's entry signal at its refresh bars (trend t-statistic over its
  lookback, its trend and sigma filters, core symbols exempt from the sigma filter; not its
  universe count), through its exits;
- `legacy_reversed`: the same signal, the other side, the same exits;
- `legacy_meta`: meta-labelling of the legacy signal: a LightGBM regression of the legacy trade's
  net outcome (volatility units) on the features plus the legacy signal, fitted on every bar
  with a signal; it decides whether to take each signal at a refresh bar;
- `xs_momentum` / `xs_reversal`: long the strongest `tail_share` of the timestamp's symbols by
  the feature spec's momentum, short the weakest (and the reverse);
- `carry`: short the `tail_share` with the highest recent funding, long the lowest;
- `ts_momentum`: each symbol on the side of its own momentum;
- `net_regression`: a LightGBM regression of the long trade's net return (volatility units);
  side by the sign of the prediction, levels on its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.core.policy import StaticConfig
from engine.domain import AutonomyZone
from models import heads as H
from models.config import TrainConfig
from models.features import FeatureSpec, build_features, funding_arrays
from models.labels import funding_over_horizon, net_trade_returns, symbol_labels
from models.train import (
    LadderTrades,
    TrainingSet,
    build_training_set,
    fold_bounds,
    simulate_ladder,
    t_by_entry_time,
    t_by_trades,
)

LEGACY_FEATURES = ("legacy_trend_z", "legacy_sigma")


@dataclass(frozen=True)
class IdeaParams:
    """Research knobs (not trading values of any model): the share of a timestamp's symbols a
    cross-sectional idea takes on each side (at least one), and the fewest symbols a timestamp
    needs for it."""

    tail_share: float
    min_symbols: int


@dataclass(frozen=True)
class IdeaResult:
    name: str
    validation: dict[str, object]
    held_out: dict[str, object]


def legacy_signal(candles: pd.DataFrame, legacy: StaticConfig) -> pd.DataFrame:
    """The legacy rule's signal per bar (as `StaticPolicy.score` computes it at a refresh):
    trend t-statistic and sigma over its lookback of log returns, population std."""
    r = np.log(candles["close"]).diff()
    window = legacy.lookback_bars
    sigma = r.rolling(window).std(ddof=0)
    trend_z = r.rolling(window).sum() / (sigma * np.sqrt(window))
    return pd.DataFrame(
        {"legacy_trend_z": trend_z.to_numpy(), "legacy_sigma": sigma.to_numpy()},
        index=candles.index,
    )


def _with_legacy(
    frame: pd.DataFrame, candles: Mapping[str, pd.DataFrame], legacy: StaticConfig
) -> pd.DataFrame:
    parts = []
    for symbol in frame["symbol"].unique():
        sig = legacy_signal(candles[symbol], legacy)
        sig.insert(0, "timestamp", sig.index.to_numpy(np.int64))
        sig.insert(0, "symbol", symbol)
        parts.append(sig.reset_index(drop=True))
    return frame.merge(pd.concat(parts, ignore_index=True), on=["symbol", "timestamp"])


def legacy_trades(frame: pd.DataFrame, legacy: StaticConfig, bar_ms: int, cost: float) -> dict:
    """Side, entry mask and net outcome of the legacy trade opened at every bar of `frame`
    (sorted by symbol, then time), through the legacy stop, take-profit and ladder."""
    side = np.sign(frame["legacy_trend_z"].to_numpy())
    trend = np.tanh(np.abs(frame["legacy_trend_z"].to_numpy()) / legacy.trend_z_scale)
    core = np.isin(frame["symbol"].to_numpy(), legacy.core_symbols)
    signal = (trend >= legacy.min_trend_score) & (side != 0)
    signal &= (frame["legacy_sigma"].to_numpy() >= legacy.min_sigma) | core
    horizon = max(1, int(round(legacy.max_hold_sec * 1000 / bar_ms)))
    n = len(frame)
    sym, ts = frame["symbol"].to_numpy(), frame["timestamp"].to_numpy()
    close, high, low = (frame[k].to_numpy(np.float64) for k in ("close", "high", "low"))
    steps = np.arange(1, horizon + 1)
    idx = np.arange(n)[:, None] + steps[None, :]
    same = idx < n
    idx = np.minimum(idx, n - 1)
    same &= (sym[idx] == sym[:, None]) & (ts[idx] - ts[:, None] == steps * bar_ms)
    entry = close[:, None]
    s = side[:, None]
    up, down = high[idx] / entry - 1, low[idx] / entry - 1
    stop = legacy.stop_loss_pct
    tp = legacy.take_profit_pct
    ladder = legacy.harvest
    rungs = [ladder.lock_r * stop, min(ladder.t1_r * stop, tp), min(ladder.t2_r * stop, tp), tp]
    trades = LadderTrades(
        stop=np.full(n, stop),
        favourable=np.tile(np.array(rungs), (n, 1)),
        close=np.where(same, s * (close[idx] / entry - 1), np.nan),
        best=np.where(same, np.where(s > 0, up, -down), np.nan),
        worst=np.where(same, np.where(s > 0, down, -up), np.nan),
        funding=side * frame["funding_legacy_h"].to_numpy(),
    )
    zone = AutonomyZone()
    fracs = (ladder.t1_close_frac, ladder.t2_close_frac)
    net = simulate_ladder(trades, 1.0, zone, fracs, cost)
    reverse = LadderTrades(
        stop=trades.stop,
        favourable=trades.favourable,
        close=-trades.close,
        best=-trades.worst,
        worst=-trades.best,
        funding=-trades.funding,
    )
    complete = same.all(axis=1)
    return {
        "side": side,
        "signal": signal & complete,
        "net": net,
        "net_reversed": simulate_ladder(reverse, 1.0, zone, fracs, cost),
        "horizon": horizon,
    }


def _stat(
    net: np.ndarray, fold: np.ndarray, folds: Sequence[int], overlap: float, ts: np.ndarray
) -> dict:
    """Trades, net mean and its t-statistic (trades that overlap `overlap` others of the same
    symbol counted n / overlap), the net mean per validation fold.

    `t_stat_by_time` is the same statistic over the mean trade of each entry time (the book the
    idea holds at that time): symbols move together, so trades opened at one time are not
    independent evidence, and this one counts entry times, not trades."""
    n = len(net)
    by_fold = [float(net[fold == k].mean()) if np.any(fold == k) else 0.0 for k in folds]
    return {
        "trades": n,
        "net_mean": float(net.mean()) if n else 0.0,
        "t_stat": t_by_trades(net, overlap),
        "t_stat_by_time": t_by_entry_time(net, ts, overlap),
        "net_mean_by_fold": by_fold,
        "positive_fold_share": float(np.mean([m > 0 for m in by_fold])) if folds else 0.0,
    }


def _passes(row: dict, cfg: TrainConfig) -> bool:
    return (
        row["trades"] >= cfg.min_data_in_leaf
        and row["net_mean"] > 0
        and row["t_stat"] >= cfg.min_entry_t
        and row["positive_fold_share"] >= cfg.entry_fold_share
    )


def judge(
    net: np.ndarray,
    fold: np.ndarray,
    taken: np.ndarray,
    score: np.ndarray | None,
    cfg: TrainConfig,
    overlap: float,
    ts: np.ndarray,
) -> dict[str, object]:
    """The evidence bar on one idea's validation trades; with a score, the best passing level.

    `overlap`: how many of a symbol's trades are open at once (hold bars / bars between two
    entries: the horizon for an idea that may enter at every bar, 1 for the legacy rule, whose
    hold is not longer than its refresh interval)."""
    folds = sorted(int(k) for k in np.unique(fold) if k >= 0)
    every = _stat(net[taken], fold[taken], folds, overlap, ts[taken])
    out: dict[str, object] = {"every_signal": every, "level": None, "chosen": None, "best": None}
    if score is None:
        out["chosen"] = every if _passes(every, cfg) else None
        out["level"] = -np.inf if out["chosen"] is not None else None
        return out
    levels = np.linspace(0, 1, cfg.grid_points + 1)[:-1]
    candidates = np.unique(np.quantile(score[taken], levels)) if taken.any() else []
    best = None
    for level in candidates:
        keep = taken & (score >= level)
        row = _stat(net[keep], fold[keep], folds, overlap, ts[keep])
        if row["trades"] >= cfg.min_data_in_leaf and (
            out["best"] is None or row["t_stat"] > out["best"]["t_stat"]
        ):
            out["best"] = {"level": float(level), **row}
        if _passes(row, cfg) and (best is None or row["t_stat"] > best[1]["t_stat"]):
            best = (float(level), row)
    if best is not None:
        out["level"], out["chosen"] = best
    return out


def _params(cfg: TrainConfig) -> dict[str, object]:
    head = H.Head("research", "regression", False)
    return H.lgb_params(cfg, head)


def _fit_predict(
    train: pd.DataFrame, target: np.ndarray, rows: pd.DataFrame, names: Sequence[str], cfg
) -> np.ndarray:
    x = train[list(names)].to_numpy(np.float64)
    data = lgb.Dataset(x, target, feature_name=list(names), params={"verbosity": -1})
    booster = lgb.train(_params(cfg), data, num_boost_round=cfg.rounds)
    return booster.predict(rows[list(names)].to_numpy(np.float64))


def _cross_section(frame: pd.DataFrame, column: str, p: IdeaParams) -> np.ndarray:
    """+1 for the highest `tail_share` of `column` per timestamp, -1 for the lowest, else 0."""
    g = frame.groupby("timestamp")[column]
    size = g.transform("size").to_numpy()
    tail = np.maximum(1, np.floor(size * p.tail_share))
    high = g.rank(ascending=False, method="first").to_numpy()
    low = g.rank(ascending=True, method="first").to_numpy()
    side = np.where(high <= tail, 1.0, np.where(low <= tail, -1.0, 0.0))
    return np.where((size >= p.min_symbols) & (size >= 2 * tail), side, 0.0)


def _prepare(
    frame: pd.DataFrame,
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None],
    legacy: StaticConfig,
    bar_ms: int,
    cost: float,
    horizon: int,
) -> pd.DataFrame:
    frame = _with_legacy(frame, candles, legacy)
    frame = frame.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    legacy_h = max(1, int(round(legacy.max_hold_sec * 1000 / bar_ms)))
    pays = np.zeros(len(frame))
    for symbol, rows in frame.groupby("symbol", sort=False).groups.items():
        arrays = funding_arrays(funding.get(symbol)) or (None, None)
        ts = frame.loc[rows, "timestamp"].to_numpy(np.int64)
        pays[np.asarray(rows)] = funding_over_horizon(ts, bar_ms, legacy_h, *arrays)
    frame["funding_legacy_h"] = pays
    lt = legacy_trades(frame, legacy, bar_ms, cost)
    frame["legacy_side"] = lt["side"]
    frame["legacy_on"] = lt["signal"]
    close_time = frame["timestamp"].to_numpy() + bar_ms
    frame["legacy_refresh"] = (close_time // bar_ms) % legacy.refresh_bars == 0
    frame["legacy_net"] = lt["net"]
    frame["legacy_net_reversed"] = lt["net_reversed"]
    frame["long_net"] = net_trade_returns(
        frame["fwd_return"].to_numpy(), frame["funding_h"].to_numpy(), np.ones(len(frame)), cost
    )
    frame["short_net"] = net_trade_returns(
        frame["fwd_return"].to_numpy(), frame["funding_h"].to_numpy(), -np.ones(len(frame)), cost
    )
    return frame


def _rule(side: np.ndarray, frame: pd.DataFrame, on: np.ndarray | None = None) -> tuple:
    net = np.where(side > 0, frame["long_net"], frame["short_net"])
    taken = (side != 0) if on is None else on
    return net, taken, None


def evaluate_ideas(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None] | None,
    legacy: StaticConfig,
    cost: float,
    cfg: TrainConfig,
    params: IdeaParams,
    *,
    spec: FeatureSpec | None = None,
    train_end_ms: int | None = None,
    holdout_symbols: Sequence[str] = (),
    test_symbols: Sequence[str] | None = None,
    test_start_ms: int | None = None,
    test_end_ms: int | None = None,
) -> list[IdeaResult]:
    """Every idea's validation figures (training period only) and then its held-out figures.

    The held-out test: `test_symbols` (default: the held-out symbols) on the bars from
    `test_start_ms` (default: the training end) to `test_end_ms` (default: the end of the data;
    no trade's horizon reaches past it). A walk-forward block passes every symbol and the block.
    """
    spec = spec or FeatureSpec()
    funding = funding or {}
    ts_set: TrainingSet = build_training_set(
        candles, funding, spec, cfg, train_end_ms, holdout_symbols
    )
    bar_ms, horizon = ts_set.bar_ms, cfg.horizon_bars
    train = _prepare(ts_set.frame, candles, funding, legacy, bar_ms, cost, horizon)
    bounds = fold_bounds(train["timestamp"].to_numpy(), cfg)
    fold = np.full(len(train), -1)
    for k, (lo, hi) in enumerate(bounds):
        fold[(train["timestamp"] >= lo).to_numpy() & (train["timestamp"] < hi).to_numpy()] = k
    held = _test_frame(
        candles,
        funding,
        spec,
        cfg,
        bar_ms,
        holdout_symbols if test_symbols is None else test_symbols,
        ts_set.train_end_ms if test_start_ms is None else test_start_ms,
        test_end_ms,
    )
    if held is not None:
        held = _prepare(held, candles, funding, legacy, bar_ms, cost, horizon)
    names = list(ts_set.features)
    meta_names = [*names, *LEGACY_FEATURES]
    legacy_h = max(1, int(round(legacy.max_hold_sec * 1000 / bar_ms)))
    legacy_overlap = max(1.0, legacy_h / legacy.refresh_bars)

    def oof(target_fn, mask_fn, names_):
        """Out-of-fold predictions on the validation rows, and a fit on all training rows."""
        pred = np.full(len(train), np.nan)
        gap = (max(horizon, legacy_h) + cfg.embargo_bars) * bar_ms
        stride = (train["timestamp"].to_numpy() // bar_ms) % cfg.row_stride == 0
        for k, (lo, _hi) in enumerate(bounds):
            rows = train[(train["timestamp"].to_numpy() < lo - gap) & stride & mask_fn(train)]
            block = (fold == k) & mask_fn(train)
            pred[block] = _fit_predict(rows, target_fn(rows), train[block], names_, cfg)
        held_pred = None
        if held is not None:
            rows = train[stride & mask_fn(train)]
            held_pred = _fit_predict(rows, target_fn(rows), held, names_, cfg)
        return pred, held_pred

    def legacy_on(f: pd.DataFrame) -> np.ndarray:
        return f["legacy_on"].to_numpy()

    def everything(f: pd.DataFrame) -> np.ndarray:
        return np.ones(len(f), dtype=bool)

    meta, meta_held = oof(
        lambda f: (f["legacy_net"] / f["vol_unit"]).to_numpy(), legacy_on, meta_names
    )
    reg, reg_held = oof(lambda f: (f["long_net"] / f["vol_unit"]).to_numpy(), everything, names)

    def ideas(f: pd.DataFrame, pred_meta, pred_reg) -> dict[str, tuple]:
        on = f["legacy_on"].to_numpy() & f["legacy_refresh"].to_numpy()
        reg_side = np.sign(pred_reg)
        return {
            "legacy": (f["legacy_net"].to_numpy(), on, None, legacy_h, legacy_overlap),
            "legacy_reversed": (
                f["legacy_net_reversed"].to_numpy(),
                on,
                None,
                legacy_h,
                legacy_overlap,
            ),
            "legacy_meta": (
                f["legacy_net"].to_numpy(),
                on & np.isfinite(pred_meta),
                pred_meta,
                legacy_h,
                legacy_overlap,
            ),
            "xs_momentum": (*_rule(_cross_section(f, "momentum", params), f), horizon, horizon),
            "xs_reversal": (*_rule(-_cross_section(f, "momentum", params), f), horizon, horizon),
            "carry": (*_rule(-_cross_section(f, "funding_mean", params), f), horizon, horizon),
            "ts_momentum": (*_rule(np.sign(f["momentum"].to_numpy()), f), horizon, horizon),
            "net_regression": (
                np.where(reg_side > 0, f["long_net"], f["short_net"]),
                np.isfinite(pred_reg) & (reg_side != 0),
                np.abs(pred_reg),
                horizon,
                horizon,
            ),
        }

    val = ideas(train, meta, reg)
    out = []
    in_val = fold >= 0
    held_ideas = ideas(held, meta_held, reg_held) if held is not None else {}
    for name, (net, taken, score, h, overlap) in val.items():
        ok = taken & in_val & np.isfinite(net)
        verdict = judge(net, fold, ok, score, cfg, overlap, train["timestamp"].to_numpy())
        result = {"horizon_bars": h, **verdict}
        held_out: dict[str, object] = {}
        if name in held_ideas:
            hnet, htaken, hscore, _, _ = held_ideas[name]
            hok = htaken & np.isfinite(hnet)
            zero = np.zeros(len(hnet), dtype=int)
            hts = held["timestamp"].to_numpy()
            held_out["every_signal"] = _stat(hnet[hok], zero[hok], [0], overlap, hts[hok])
            level = verdict["level"]
            chosen = np.zeros(len(hnet), dtype=bool)
            if level is not None:
                chosen = hok if hscore is None else hok & (hscore >= level)
            held_out["chosen"] = _stat(hnet[chosen], zero[chosen], [0], overlap, hts[chosen])
        out.append(IdeaResult(name, result, held_out))
    return out


def _test_frame(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None],
    spec: FeatureSpec,
    cfg: TrainConfig,
    bar_ms: int,
    symbols: Sequence[str],
    start_ms: int,
    end_ms: int | None,
) -> pd.DataFrame | None:
    """Features and labels of `symbols` on the bars in [start_ms, end_ms) (None: no rows)."""
    symbols = [s for s in symbols if s in candles]
    if not symbols:
        return None
    cut = {s: c if end_ms is None else c.loc[c.index < end_ms] for s, c in candles.items()}
    cut = {s: cut[s] for s in symbols if len(cut[s]) > spec.lookback_bars}
    if not cut:
        return None
    feats = build_features(cut, {s: funding.get(s) for s in cut}, spec)
    labels = []
    for symbol, c in cut.items():
        lab = symbol_labels(c, cfg.horizon_bars)
        arrays = funding_arrays(funding.get(symbol)) or (None, None)
        lab["funding_h"] = funding_over_horizon(
            c.index.to_numpy(np.int64), bar_ms, cfg.horizon_bars, *arrays
        )
        for k in ("low", "high", "close"):
            lab.insert(0, k, c[k].to_numpy())
        lab.insert(0, "timestamp", c.index.to_numpy(np.int64))
        lab.insert(0, "symbol", symbol)
        labels.append(lab.reset_index(drop=True))
    frame = feats.merge(pd.concat(labels, ignore_index=True), on=["symbol", "timestamp"])
    frame = frame[frame["timestamp"] >= start_ms]
    frame = frame.dropna(subset=[*spec.names(), "fwd_return"]).reset_index(drop=True)
    frame["vol_unit"] = frame["sigma"] * np.sqrt(cfg.horizon_bars)
    frame = frame[frame["vol_unit"] > 0].reset_index(drop=True)
    return frame if len(frame) else None
