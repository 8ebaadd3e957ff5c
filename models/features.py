"""Per symbol-bar features, computed vectorised and strictly from data at or before each bar.

One numpy core (`symbol_feature_matrix`) serves both training (whole series) and the policy (the
last `FeatureSpec.lookback_bars` bars), so the two can never disagree. Windows count bars, not
hours: the data may have gaps and nothing here fills them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

OHLCV = ("open", "high", "low", "close", "volume")
RANKED = ("momentum", "sigma", "volume_z", "trend_z")  # features also ranked across symbols


class FeatureError(ValueError):
    """Input candles cannot produce features (missing columns, wrong index)."""


@dataclass(frozen=True)
class FeatureSpec:
    """Window lengths (in bars) of every feature: feature engineering, not trading decisions.

    The spec's `version()` hash goes into every model card, so a model only ever sees the
    features it was trained on.
    """

    return_horizons: tuple[int, ...] = (1, 4, 12, 24, 72)
    vol_window: int = 24
    vol_long_window: int = 168
    trend_window: int = 48
    volume_window: int = 72
    range_window: int = 24
    funding_prints: int = 3
    momentum_window: int = 168
    use_funding: bool = True

    def __post_init__(self) -> None:
        windows = [*self.return_horizons, self.vol_window, self.vol_long_window]
        windows += [
            self.trend_window,
            self.volume_window,
            self.range_window,
            self.funding_prints,
            self.momentum_window,
        ]
        if not self.return_horizons or min(windows) < 1:
            raise FeatureError("every feature window must be at least one bar")
        if self.vol_window < 2 or self.volume_window < 2:
            raise FeatureError("standard deviations need windows of at least two bars")

    def symbol_names(self) -> tuple[str, ...]:
        """Names of the features computed from one symbol's own history."""
        returns = tuple(f"ret_{h}" for h in self.return_horizons)
        return (
            *returns,
            "momentum",
            "sigma",
            "sigma_ratio",
            "trend_z",
            "trend_eff",
            "volume_z",
            "range_pct",
            "range_ratio",
            *(("funding_rate", "funding_mean") if self.use_funding else ()),
            "regime",
        )

    def names(self) -> tuple[str, ...]:
        """All feature names, in the column order the models see."""
        return (*self.symbol_names(), *(f"xs_rank_{name}" for name in RANKED))

    @property
    def lookback_bars(self) -> int:
        """Bars of history needed for the last bar's features to be complete."""
        return 1 + max(
            *self.return_horizons,
            self.momentum_window,
            self.vol_window,
            self.vol_long_window,
            self.trend_window,
            self.volume_window,
            self.range_window,
        )

    def params(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def version(self) -> str:
        """Short hash of the feature names and parameters, recorded in model cards."""
        payload = json.dumps({"names": self.names(), "params": asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> FeatureSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise FeatureError(f"unknown feature parameter(s): {', '.join(sorted(unknown))}")
        values = dict(params)
        if "return_horizons" in values:
            values["return_horizons"] = tuple(values["return_horizons"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing windows along the last axis (NaN-padded at the start): [..., t, :] = x[..., t-w+1..t]."""
    pad = np.full((*x.shape[:-1], window - 1), np.nan)
    return sliding_window_view(np.concatenate([pad, x], axis=-1), window, axis=-1)


def _lag(x: np.ndarray, lag: int) -> np.ndarray:
    """x shifted `lag` bars later along the last axis (NaN where there is no earlier bar)."""
    out = np.full_like(x, np.nan)
    if lag < x.shape[-1]:
        out[..., lag:] = x[..., : x.shape[-1] - lag]
    return out


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Division that yields NaN (never inf) where the denominator is zero or missing."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=np.isfinite(den) & (den != 0))
    return out


Funding = tuple[np.ndarray, np.ndarray] | None  # (settlement times ms, rates), sorted by time


def _funding_asof(
    bar_ts: np.ndarray, funding: Funding, prints: int
) -> tuple[np.ndarray, np.ndarray]:
    """Latest funding print at or before each bar's open time, and the mean of the last `prints`."""
    n = len(bar_ts)
    if funding is None or len(funding[0]) == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    funding_ts, funding_rate = funding
    idx = np.searchsorted(funding_ts, bar_ts, side="right") - 1
    last = np.where(idx >= 0, funding_rate[np.clip(idx, 0, None)], np.nan)
    recent = idx[:, None] - np.arange(prints)[None, :]
    mean = funding_rate[np.clip(recent, 0, None)].mean(axis=1)
    mean[idx + 1 < prints] = np.nan
    return last, mean


def _last_window(x: np.ndarray, window: int) -> np.ndarray:
    """The trailing window of the last bar only, shaped like `_windows(x, window)[..., -1:, :]`."""
    if x.shape[-1] < window:
        return _windows(x, window)[..., -1:, :]
    return x[..., None, x.shape[-1] - window :]


def feature_matrix(
    timestamps: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    funding: Sequence[Funding],
    spec: FeatureSpec,
    last_only: bool = False,
) -> np.ndarray:
    """Per-symbol features of k aligned series at once: inputs (k, bars), output (k, bars, f).

    Entry [s, t] uses only bars 0..t of series s and funding prints at or before bar t's open
    time. Training passes one long series; the policy passes every symbol's last
    `spec.lookback_bars` bars with `last_only=True`, which returns (k, 1, f): the same numbers
    for the last bar without computing the window statistics of the others.
    """
    close = np.atleast_2d(np.asarray(close, dtype=np.float64))
    high = np.atleast_2d(np.asarray(high, dtype=np.float64))
    low = np.atleast_2d(np.asarray(low, dtype=np.float64))

    def win(x: np.ndarray, window: int) -> np.ndarray:
        return _last_window(x, window) if last_only else _windows(x, window)

    def now(x: np.ndarray) -> np.ndarray:
        return x[..., -1:] if last_only else x

    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(close)
    r1 = log_close - _lag(log_close, 1)
    cols: list[np.ndarray] = [now(log_close - _lag(log_close, h)) for h in spec.return_horizons]
    cols.append(now(log_close - _lag(log_close, spec.momentum_window)))

    sigma = win(r1, spec.vol_window).std(axis=-1, ddof=1)
    sigma_long = win(r1, spec.vol_long_window).std(axis=-1, ddof=1)
    sigma_ratio = _safe_div(sigma, sigma_long)
    trend_ret = now(log_close - _lag(log_close, spec.trend_window))
    trend_z = _safe_div(trend_ret, sigma * np.sqrt(spec.trend_window))
    path = win(np.abs(r1), spec.trend_window).sum(axis=-1)
    trend_eff = _safe_div(trend_ret, path)

    log_volume = np.log1p(np.atleast_2d(np.asarray(volume, dtype=np.float64)))
    vol_windows = win(log_volume, spec.volume_window)
    volume_z = _safe_div(
        now(log_volume) - vol_windows.mean(axis=-1), vol_windows.std(axis=-1, ddof=1)
    )

    range_all = _safe_div(high - low, close)
    range_pct = now(range_all)
    range_ratio = _safe_div(range_pct, win(range_all, spec.range_window).mean(axis=-1))

    # Regime: volatility above or below its own long-run level, crossed with the trend's sign.
    known = np.isfinite(sigma_ratio) & np.isfinite(trend_z)
    regime = np.where(known, 2.0 * (sigma_ratio > 1.0) + (trend_z > 0.0), np.nan)

    cols += [sigma, sigma_ratio, trend_z, trend_eff, volume_z, range_pct, range_ratio]
    if spec.use_funding:
        ts = now(np.atleast_2d(np.asarray(timestamps)))
        pairs = [_funding_asof(ts[s], funding[s], spec.funding_prints) for s in range(len(ts))]
        cols += [np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])]
    cols.append(regime)
    return np.stack(cols, axis=-1)


def symbol_feature_matrix(
    timestamps: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    funding: Funding,
    spec: FeatureSpec,
) -> np.ndarray:
    """Features of every bar of one symbol, shape (bars, len(spec.symbol_names()))."""
    return feature_matrix(timestamps, high, low, close, volume, [funding], spec)[0]


def _check_candles(symbol: str, candles: pd.DataFrame) -> None:
    missing = [c for c in OHLCV if c not in candles.columns]
    if missing:
        raise FeatureError(f"{symbol}: candles lack column(s) {', '.join(missing)}")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise FeatureError(f"{symbol}: candle timestamps must be sorted and unique")


def funding_arrays(funding: pd.DataFrame | None) -> Funding:
    """(times, rates) of a funding frame indexed by settlement time; None when there is none."""
    if funding is None or len(funding) == 0:
        return None
    frame = funding.sort_index()
    return frame.index.to_numpy(np.int64), frame["funding_rate"].to_numpy(np.float64)


def symbol_features(
    candles: pd.DataFrame, funding: pd.DataFrame | None, spec: FeatureSpec, symbol: str = "?"
) -> pd.DataFrame:
    """Per-symbol features of every bar, indexed like `candles` (int64 ms open time)."""
    _check_candles(symbol, candles)
    matrix = symbol_feature_matrix(
        candles.index.to_numpy(np.int64),
        candles["high"].to_numpy(np.float64),
        candles["low"].to_numpy(np.float64),
        candles["close"].to_numpy(np.float64),
        candles["volume"].to_numpy(np.float64),
        funding_arrays(funding),
        spec,
    )
    return pd.DataFrame(matrix, index=candles.index, columns=list(spec.symbol_names()))


def cross_sectional_rank(values: np.ndarray) -> np.ndarray:
    """Percentile rank (average ties, in (0, 1]) among the finite values of one timestamp.

    Matches pandas' `rank(pct=True)`; NaN stays NaN and does not count.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    if ok.any():
        _, inverse, counts = np.unique(values[ok], return_inverse=True, return_counts=True)
        first = np.cumsum(counts) - counts  # 0-based position of each distinct value
        out[ok] = (first + (counts + 1) / 2)[inverse] / ok.sum()
    return out


def add_cross_sectional_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `xs_rank_*` columns: each ranked among the symbols present at the same timestamp."""
    ranks = frame.groupby("timestamp", sort=False)[list(RANKED)].rank(pct=True)
    for name in RANKED:
        frame[f"xs_rank_{name}"] = ranks[name].to_numpy()
    return frame


def build_features(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None] | None,
    spec: FeatureSpec,
) -> pd.DataFrame:
    """Long frame of every symbol-bar: columns symbol, timestamp, then `spec.names()`.

    Sorted by timestamp then symbol; symbols may start and end on different dates.
    """
    parts = []
    for symbol in sorted(candles):
        sym_funding = funding.get(symbol) if funding else None
        feats = symbol_features(candles[symbol], sym_funding, spec, symbol)
        feats.insert(0, "timestamp", feats.index.to_numpy(np.int64))
        feats.insert(0, "symbol", symbol)
        parts.append(feats.reset_index(drop=True))
    if not parts:
        raise FeatureError("no symbols to build features from")
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
    return add_cross_sectional_ranks(frame)
