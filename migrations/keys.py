"""Which policy value a legacy name stands for: the bridge from `audit` names to `PolicyKey`.

Only names that clearly mean one policy value map to it; anything else stays unmapped and the
phase lists it as something it cannot handle, rather than guess.
"""

from __future__ import annotations

import re

from engine.domain import PolicyKey

# a size in money (converted with the account equity) rather than a fraction of equity
NOTIONAL = "notional"
_FRACTION_WORDS = {"pct", "percent", "fraction", "frac", "ratio"}
_MONEY_WORDS = {"usd", "usdt", "usdc", "notional", "quote", "size", "amount", "margin"}


def words(name: str) -> list[str]:
    """`positionSizeUSD` / `position_size_usd` -> ["position", "size", "usd"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def sizing_key(name: str) -> str | None:
    """PolicyKey for a leverage or size name (`NOTIONAL` for sizes in money), else None."""
    ws = words(name)
    if any(w in ("leverage", "lev") for w in ws):
        return str(PolicyKey.LEVERAGE)
    if ("size" in ws or "sizing" in ws) and _FRACTION_WORDS & set(ws):
        return str(PolicyKey.SIZE_PCT)
    if "size" in ws or "notional" in ws or ({"usd", "usdt"} & set(ws) and _MONEY_WORDS & set(ws)):
        return NOTIONAL
    return None


def ladder_key(name: str) -> str | None:
    """PolicyKey for a harvest-ladder or kill-threshold field (`T1_R`, `lock_R`, ...), else None."""
    ws = words(name)
    joined = "_".join(ws)
    for n in ("1", "2", "3"):
        if joined in (f"t{n}_r", f"t{n}", f"tp{n}_r", f"harvest_t{n}_r", f"target{n}_r"):
            return f"harvest_t{n}_r"
    if joined in _SCALE_OUT_R:  # the R at which a single scale-out closes part: the first rung
        return str(PolicyKey.HARVEST_T1_R)
    later_rung = {"t2", "t3", "tp2", "tp3", "2", "3"} & set(ws)  # T2_LOCK_R: no policy key
    if joined in ("lock_r", "lock", "harvest_lock_r", "lock_in_r") or (
        "lock" in ws and "r" in ws and not later_rung
    ):
        return str(PolicyKey.HARVEST_LOCK_R)
    if kill_key(name):
        return str(PolicyKey.KILL_THRESHOLD)
    return hold_key(name)


_SCALE_OUT_R = {"scale_r", "scale_out_r", "scaleout_r", "partial_r", "partial_close_r", "take_r"}


def scale_out_close_frac_key(name: str, function: str) -> str | None:
    """The share a partial close takes: `T1_CLOSE_FRACTION`, or any quantity share closed in a
    single scale-out function (`check_scale_out`, `partial_exit`): the first rung's share."""
    key = close_frac_key(name)
    if key is not None:
        return key
    if {"scale", "scaleout", "partial"} & set(words(function)):
        return str(PolicyKey.HARVEST_T1_CLOSE_FRAC)
    return None


def kill_key(name: str) -> bool:
    """Whether a name is the kill-score *close* threshold (the one the policy decides)."""
    ws = words(name)
    if "threshold" in ws and ("kill" in ws or "close" in ws):
        return True
    return "kill" in ws and "close" in ws


_SCALE_WORDS = {"multiplier", "mult", "scale", "scaling", "factor", "coef", "coefficient"}
_SHARE_WORDS = {"frac", "fraction", "pct", "percent", "share", "ratio", "portion", "qty", "size"}


def positions_key(name: str) -> str | None:
    """`MAX_OPEN_POSITIONS`: how many positions at once. The policy trades one position per
    universe symbol, so that count is the universe's."""
    ws = set(words(name))
    if ws & {"positions", "trades"} and ws & {"max", "open", "concurrent"} and "size" not in ws:
        return str(PolicyKey.UNIVERSE_COUNT)
    return None


def is_scale_name(name: str) -> bool:
    """`tier_size_multiplier`, `confidence_size_scale`: a factor applied to a decided value."""
    return bool(_SCALE_WORDS & set(words(name)))


def close_frac_key(name: str) -> str | None:
    """`T1_CLOSE_FRACTION` -> harvest_t1_close_frac: the share closed at a harvest rung."""
    ws = words(name)
    if not (_SHARE_WORDS & set(ws)) or not ({"close", "take", "harvest", "exit"} & set(ws)):
        return None
    for n in ("1", "2"):
        if {f"t{n}", f"tp{n}", f"target{n}", f"rung{n}"} & set(ws):
            return f"harvest_t{n}_close_frac"
    return None


def hold_key(name: str) -> str | None:
    """`max_hold_sec`, `max_age_sec`: how long a position may be held (seconds)."""
    ws = set(words(name))
    if ws & {"hold", "holding", "age"} and ws & {"sec", "secs", "seconds", "s"}:
        return "max_hold_sec"
    return None


def kill_level_key(name: str) -> str | None:
    """A graded kill level: panic -> the close threshold (same action: close everything);
    reduce / warn -> the reduce level (the policy's first graded response); a reduce fraction
    -> kill_reduce_frac."""
    ws = set(words(name))
    if kill_key(name):
        return str(PolicyKey.KILL_THRESHOLD)
    if not ws & {"kill", "score"}:
        return None
    if ws & {"panic", "emergency", "hard", "force", "forced", "close"}:
        return str(PolicyKey.KILL_THRESHOLD)
    cut = ws & {"reduce", "reduction", "trim", "cut", "partial", "derisk"}
    if cut and ws & _SHARE_WORDS:
        return "kill_reduce_frac"
    if cut or ws & {"warn", "warning", "alert", "watch", "notice", "soft"}:
        return "kill_reduce_threshold"
    return None
