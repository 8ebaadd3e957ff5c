"""Hard safety limits: the last line of defence, checked on every order and every minute.

These are not tuning knobs. Loosening any of them needs the risk owner's sign-off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MAX_LEVERAGE_HARD_CAP = 125
MIN_MARGIN_RATIO_PCT = 10
MAX_POSITION_SIZE_PCT = 50
MAX_TOTAL_EXPOSURE_PCT = 200


class SafetyViolation(RuntimeError):
    """An order or the account broke a hard limit; the caller must not trade."""


@dataclass(frozen=True)
class AccountState:
    equity_usdt: float
    used_margin_usdt: float
    open_notional_usdt: float


def margin_ratio_pct(account: AccountState) -> float:
    """Free margin as a percentage of equity; an empty account has none."""
    if account.equity_usdt <= 0:
        return 0.0
    return (account.equity_usdt - account.used_margin_usdt) / account.equity_usdt * 100


def exposure_pct(account: AccountState) -> float:
    """Open notional as a percentage of equity."""
    return account.open_notional_usdt / max(account.equity_usdt, 1e-9) * 100


def exposure_after_pct(account: AccountState, notional_usdt: float) -> float:
    """Exposure the account would have after a new order of `notional_usdt`."""
    total = account.open_notional_usdt + notional_usdt
    return total / max(account.equity_usdt, 1e-9) * 100


def check_order(account: AccountState, notional_usdt: float, leverage: float) -> None:
    """Raise before an order that would break any hard limit."""
    if leverage > MAX_LEVERAGE_HARD_CAP:
        raise SafetyViolation(f"leverage {leverage}x above hard cap {MAX_LEVERAGE_HARD_CAP}x")
    size_pct = notional_usdt / max(account.equity_usdt, 1e-9) * 100
    if size_pct > MAX_POSITION_SIZE_PCT:
        raise SafetyViolation(f"position {size_pct:.1f}% of equity above {MAX_POSITION_SIZE_PCT}%")
    if exposure_after_pct(account, notional_usdt) > MAX_TOTAL_EXPOSURE_PCT:
        raise SafetyViolation(f"total exposure would exceed {MAX_TOTAL_EXPOSURE_PCT}% of equity")
    if margin_ratio_pct(account) < MIN_MARGIN_RATIO_PCT:
        raise SafetyViolation(f"margin ratio below {MIN_MARGIN_RATIO_PCT}%, new orders blocked")


def check_account(account: AccountState) -> list[str]:
    """Problems with the account as it stands, for the minute-by-minute watchdog."""
    problems = []
    ratio = margin_ratio_pct(account)
    if ratio < MIN_MARGIN_RATIO_PCT:
        problems.append(f"margin ratio {round(ratio, 2)}% < {MIN_MARGIN_RATIO_PCT}%")
    exposure = exposure_pct(account)
    if exposure > MAX_TOTAL_EXPOSURE_PCT:
        problems.append(f"exposure {round(exposure, 2)}% > {MAX_TOTAL_EXPOSURE_PCT}%")
    for problem in problems:
        logger.error("SAFETY: %s", problem)
    return problems


if __name__ == "__main__":
    acct = AccountState(equity_usdt=1000.0, used_margin_usdt=150.0, open_notional_usdt=1500.0)
    print("margin ratio %:", round(margin_ratio_pct(acct), 2))
    print("problems:", check_account(acct))
    try:
        check_order(acct, notional_usdt=800.0, leverage=20)
    except SafetyViolation as exc:
        print("blocked:", exc)
