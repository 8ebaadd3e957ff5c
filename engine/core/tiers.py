"""Exchange leverage brackets and maintenance-margin tiers (Binance USDT-M, ccxt/freqtrade format).

Binance computes a position's maintenance margin with the rate of the bracket its notional falls
in, minus that bracket's maintenance amount (`cum`):

    maintenance_margin = notional * maintenance_margin_rate - cum

`cum` makes the result continuous across brackets (it equals the sum, over the lower brackets,
of floor * (rate_k - rate_{k-1})), so the whole notional is not re-rated at a bracket edge.

Sources, first found wins: an explicit path; `$QCTL_LEVERAGE_TIERS`; `../shared/data/
binance_leverage_tiers.json` (next to the working directory or the repository); the packaged
copy `engine/sample_data/leverage_tiers.json` (the entries of the shipped symbols only).
Regenerate the packaged copy with `python -m engine.core.tiers SOURCE.json OHLCV_DIR`.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.resources import SAMPLE_DATA

PACKAGED_TIERS = SAMPLE_DATA / "leverage_tiers.json"
SHARED_NAME = Path("shared") / "data" / "binance_leverage_tiers.json"
ENV_VAR = "QCTL_LEVERAGE_TIERS"

# ccxt linear perpetual ids: BASE/QUOTE:SETTLE with SETTLE == QUOTE and no expiry suffix
_CCXT_LINEAR = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)/(?P<quote>[A-Za-z0-9]+):(?P<settle>[A-Za-z0-9]+)$"
)
_USDM_FILE = re.compile(r"^binance_usdm_(?P<symbol>[A-Za-z0-9]+-[A-Za-z0-9]+)_")


class TiersError(ValueError):
    """The tiers file is unreadable or has no entry for a symbol."""


@dataclass(frozen=True, slots=True)
class Tier:
    """One leverage bracket: notional in (min_notional, max_notional] USDT."""

    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    max_leverage: float
    maintenance_amount: float  # Binance's `cum`


def ccxt_to_symbol(market_id: str) -> str | None:
    """`BTC/USDT:USDT` -> `BTC-USDT`; None for inverse or dated contracts."""
    m = _CCXT_LINEAR.match(market_id)
    if m is None or m["settle"] != m["quote"]:
        return None
    return f"{m['base']}-{m['quote']}".upper()


def normalise_symbol(symbol: str) -> str:
    """Accept our `BTC-USDT`, ccxt `BTC/USDT:USDT` or `BTC/USDT`; return `BTC-USDT`."""
    s = symbol.strip()
    if "/" in s:
        s = s.split(":", 1)[0].replace("/", "-")
    return s.upper()


def _cum_from_rates(rows: list[tuple[float, float]]) -> list[float]:
    """Binance's maintenance amounts from (floor, rate) pairs, for files that lack `cum`."""
    cums: list[float] = []
    cum = 0.0
    prev_rate = 0.0
    for i, (floor, rate) in enumerate(rows):
        if i > 0:
            cum += floor * (rate - prev_rate)
        cums.append(cum)
        prev_rate = rate
    return cums


def _parse_market(market_id: str, entries: Any) -> tuple[Tier, ...]:
    if not isinstance(entries, list) or not entries:
        raise TiersError(f"leverage tiers for {market_id}: expected a non-empty list")
    try:
        entries = sorted(entries, key=lambda e: float(e["minNotional"]))
        floors_rates = [
            (float(e["minNotional"]), float(e["maintenanceMarginRate"])) for e in entries
        ]
        computed = _cum_from_rates(floors_rates)
        tiers = []
        for e, cum_default in zip(entries, computed, strict=True):
            info = e.get("info") or {}
            cum = float(info["cum"]) if "cum" in info else cum_default
            tiers.append(
                Tier(
                    min_notional=float(e["minNotional"]),
                    max_notional=float(e["maxNotional"]),
                    maintenance_margin_rate=float(e["maintenanceMarginRate"]),
                    max_leverage=float(e["maxLeverage"]),
                    maintenance_amount=cum,
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise TiersError(f"leverage tiers for {market_id}: bad entry ({exc})") from None
    return tuple(tiers)


class LeverageTiers:
    """Brackets per symbol, with the two questions the engine asks of them."""

    __slots__ = ("_tiers", "_caps", "_keys", "source")

    def __init__(self, tiers: Mapping[str, Iterable[Tier]], source: str = "") -> None:
        self._tiers = {normalise_symbol(s): tuple(t) for s, t in tiers.items()}
        self._caps = {s: [t.max_notional for t in ts] for s, ts in self._tiers.items()}
        self._keys: dict[str, str] = {}  # symbol as asked -> normalised (asked every bar)
        self.source = source

    def _key(self, symbol: str) -> str:
        key = self._keys.get(symbol)
        if key is None:
            key = self._keys[symbol] = normalise_symbol(symbol)
        return key

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def from_ccxt(cls, data: Mapping[str, Any], source: str = "") -> LeverageTiers:
        """From ccxt/freqtrade's `{market_id: [tier, ...]}`; keeps linear perpetuals only."""
        if not isinstance(data, Mapping):
            raise TiersError(f"leverage tiers {source or ''}: expected a JSON object".strip())
        out: dict[str, tuple[Tier, ...]] = {}
        for market_id, entries in data.items():
            symbol = ccxt_to_symbol(market_id)
            if symbol is not None:
                out[symbol] = _parse_market(market_id, entries)
        return cls(out, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LeverageTiers:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TiersError(f"cannot read leverage tiers {p}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise TiersError(f"leverage tiers {p} is not valid JSON: {exc.msg}") from None
        return cls.from_ccxt(data, str(p))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> LeverageTiers:
        """The first source found (see the module docstring)."""
        if path is not None:
            return cls.from_file(path)
        return cls.from_file(default_tiers_path())

    # -- questions ---------------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(self._tiers))

    def has(self, symbol: str) -> bool:
        return self._key(symbol) in self._tiers

    def tiers(self, symbol: str) -> tuple[Tier, ...]:
        key = self._key(symbol)
        try:
            return self._tiers[key]
        except KeyError:
            raise TiersError(
                f"no leverage tiers for {key} in {self.source or 'the tiers given'}"
            ) from None

    def tier(self, symbol: str, notional: float) -> Tier | None:
        """The bracket holding `notional` (USDT, absolute); None above the top bracket."""
        key = self._key(symbol)
        tiers = self.tiers(key)
        i = bisect.bisect_left(self._caps[key], abs(notional))
        return tiers[i] if i < len(tiers) else None

    def max_notional(self, symbol: str) -> float:
        return self.tiers(symbol)[-1].max_notional

    def max_leverage(self, symbol: str, notional: float) -> float:
        """The exchange's maximum leverage for a position of this notional; 0 above the top bracket."""
        t = self.tier(symbol, notional)
        return t.max_leverage if t is not None else 0.0

    def maintenance_margin(self, symbol: str, notional: float) -> float:
        """Binance: notional * rate - cum, in the bracket of the notional (top bracket beyond it)."""
        n = abs(notional)
        t = self.tier(symbol, n)
        if t is None:
            t = self.tiers(symbol)[-1]
        return n * t.maintenance_margin_rate - t.maintenance_amount


def default_tiers_path() -> Path:
    """Where `LeverageTiers.load()` reads from when no path is given."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    for base in (Path.cwd().parent, repo_root.parent):
        candidate = base / SHARED_NAME
        if candidate.is_file():
            return candidate
    return PACKAGED_TIERS


def extract_packaged_tiers(source: Path, ohlcv_dir: Path, dest: Path = PACKAGED_TIERS) -> list[str]:
    """Write the source's entries for the `binance_usdm_*` symbols found in `ohlcv_dir` to `dest`.

    Entries are copied unchanged (ccxt format, ccxt market ids), so the one loader reads both.
    """
    data = json.loads(source.read_text(encoding="utf-8"))
    wanted = sorted(
        {m["symbol"].upper() for f in ohlcv_dir.iterdir() if (m := _USDM_FILE.match(f.name))}
    )
    by_symbol = {ccxt_to_symbol(k): k for k in data}
    missing = [s for s in wanted if s not in by_symbol]
    if missing:
        raise TiersError(f"{source} has no tiers for {', '.join(missing)}")
    subset = {by_symbol[s]: data[by_symbol[s]] for s in wanted}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return wanted


if __name__ == "__main__":  # maintainer script: regenerate the packaged copy
    if len(sys.argv) != 3:
        sys.exit("usage: python -m engine.core.tiers SOURCE_TIERS.json OHLCV_DIR")
    written = extract_packaged_tiers(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {len(written)} symbols to {PACKAGED_TIERS}: {' '.join(written)}")
