"""The risk kernel: every decision, in every mode, passes here before any order exists.

A pure function of (decision, portfolio, limits, tiers, price): no clock, no IO, no state. It
clips what can be clipped (leverage, size) and vetoes the rest, and says so with `SafetyEvent`s
that the caller journals.

Margin ratio, one definition for the broker, the journal, the TUI and `qctl verify`:

    margin_ratio = (equity - maintenance_margin) / equity

the share of equity above the maintenance requirement (cross margin, equity = wallet balance +
unrealised PnL). 1.0 with no positions; 0.0 at liquidation (and for equity <= 0). The owner's
`min_margin_ratio_pct = 10` means: never trade into maintenance margin above 90 % of equity.

The limits hold at every bar close, not only at entry: prices move an open book past them
between entries. `limit_trims` (pure) says which positions to trim, by how much, to be back
inside the exposure and margin-ratio limits; `RiskKernel.hold_limits` turns that into the
trading state (REDUCING while trimming), reduce-only exit actions and the safety events the
loop journals before the bar's equity row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine.core.exits import ExitAction
from engine.core.tiers import LeverageTiers
from engine.domain import (
    AutonomyZone,
    Decision,
    LimitName,
    Order,
    OrderPurpose,
    Portfolio,
    SafetyAction,
    SafetyEvent,
    SafetyLimits,
    Side,
    SkipReason,
    TradingState,
)

# relative slack so that a trade landing exactly on a limit is not vetoed by float rounding
_REL_EPS = 1e-9


def maintenance_margin(
    portfolio: Portfolio, tiers: LeverageTiers, prices: Mapping[str, float] | None = None
) -> float:
    """Sum of the positions' maintenance margins (USDT) at `prices` (default: their marks)."""
    total = 0.0
    for symbol, p in portfolio.positions.items():
        mark = prices.get(symbol, p.mark_price) if prices is not None else p.mark_price
        total += tiers.maintenance_margin(symbol, p.qty * mark)
    return total


def equity_at(portfolio: Portfolio, prices: Mapping[str, float] | None = None) -> float:
    """Equity (wallet + unrealised PnL) at `prices` (default: the positions' marks)."""
    if prices is None:
        return portfolio.equity
    upnl = 0.0
    for symbol, p in portfolio.positions.items():
        mark = prices.get(symbol, p.mark_price)
        upnl += p.side.sign * p.qty * (mark - p.entry_price)
    return portfolio.wallet_balance + upnl


def ratio_of(equity: float, maint: float) -> float:
    """(equity - maintenance) / equity, 0 when equity <= 0: the one margin-ratio formula."""
    if equity <= 0:
        return 0.0
    return (equity - maint) / equity


def margin_ratio(
    portfolio: Portfolio, tiers: LeverageTiers, prices: Mapping[str, float] | None = None
) -> float:
    """The account margin ratio (module docstring) at `prices` (default: the positions' marks)."""
    return ratio_of(equity_at(portfolio, prices), maintenance_margin(portfolio, tiers, prices))


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """What the kernel made of a decision.

    `decision`: the decision to act on (leverage/size clipped) or, when vetoed, the same
    decision turned into a skip with the reason; `original`: as the policy gave it;
    `notional`/`qty`: the order to send when approved (0 otherwise); `events`: every clip and veto.
    """

    approved: bool
    decision: Decision
    original: Decision
    events: tuple[SafetyEvent, ...] = ()
    notional: float = 0.0
    qty: float = 0.0


def _book(portfolio: Portfolio, tiers: LeverageTiers) -> tuple[float, float, float, float]:
    """(equity, gross notional, maintenance margin, initial margin) at the marks, in one pass:
    the sums of `Portfolio.equity`, `gross_notional()`, `maintenance_margin()` and
    `Portfolio.initial_margin()`, term for term and in the same order (so the same floats)."""
    upnl = gross = margin = 0  # `sum()` starts from int 0
    maint = 0.0
    for symbol, p in portfolio.positions.items():
        q, m = p.qty, p.mark_price
        upnl += (q if p.side is _LONG else -q) * (m - p.entry_price)
        n = q * m
        gross += n
        margin += n / p.leverage
        maint += tiers.maintenance_margin(symbol, n)
    return portfolio.wallet_balance + upnl, gross, maint, margin


def _finite_positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0


# ---------------------------------------------------------------------------------------------
# the limits at every bar close

_BISECT_STEPS = 60  # halvings of a position's qty when searching the smallest sufficient trim


@dataclass(frozen=True, slots=True)
class LimitTrim:
    """Close `qty` of `symbol` (reduce-only) to bring the account back inside the limits."""

    symbol: str
    qty: float
    closes_all: bool
    detail: str


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """The account against the every-bar limits, and the trims that restore them.

    `exposure`/`margin_ratio`: as marked now; `*_after`: once the trims filled at the marks,
    paying `exit_cost` of the closed notional. `events`: one CLIP per trim, or one naming the
    largest position when none can be trimmed now (empty when inside). `breached`: outside a
    limit as marked now, whether or not the trims can restore it.
    """

    exposure: float
    margin_ratio: float
    exposure_after: float
    margin_ratio_after: float
    trims: tuple[LimitTrim, ...] = ()
    events: tuple[SafetyEvent, ...] = ()
    breached: bool = False


def _account(gross: float, equity: float, maint: float) -> tuple[float, float]:
    """(exposure, margin ratio) of an account with this gross notional, equity, maintenance."""
    if gross <= 0:
        return 0.0, 1.0 if equity > 0 else 0.0
    return (gross / equity if equity > 0 else math.inf), ratio_of(equity, maint)


@dataclass(slots=True)
class _Book:
    """The account as `limit_trims` trims it: notional and maintenance per symbol, equity."""

    tiers: LeverageTiers
    notional: dict[str, float]
    maint: dict[str, float]
    equity: float
    exit_cost: float

    def cost(self, symbol: str, notional_closed: float) -> float:
        """Equity a trim costs: `exit_cost` of the whole position, not only of the part closed,
        because the remainder is marked at the (slipped) fill price afterwards; conservative."""
        return self.exit_cost * self.notional[symbol] if notional_closed > 0 else 0.0

    def after(self, symbol: str, notional_closed: float) -> tuple[float, float]:
        """(exposure, margin ratio) once `notional_closed` of `symbol` filled at its mark."""
        left = self.notional[symbol] - notional_closed
        maint = sum(self.maint.values()) - self.maint[symbol]
        if left > 0:
            maint += self.tiers.maintenance_margin(symbol, left)
        gross = sum(self.notional.values()) - notional_closed
        return _account(gross, self.equity - self.cost(symbol, notional_closed), maint)

    def close(self, symbol: str, notional_closed: float, whole: bool) -> None:
        self.equity -= self.cost(symbol, notional_closed)
        left = 0.0 if whole else self.notional[symbol] - notional_closed
        self.notional[symbol] = left
        self.maint[symbol] = self.tiers.maintenance_margin(symbol, left) if left > 0 else 0.0


def limit_trims(
    portfolio: Portfolio,
    limits: SafetyLimits,
    tiers: LeverageTiers,
    ts: int,
    exit_cost: float = 0.0,
    tradable: Callable[[str], bool] | None = None,
) -> LimitCheck:
    """Which positions to trim, and by how much, so that exposure <= max and margin ratio >= min.

    Pure: reads the positions at their marks. Largest notional first (ties: the worst
    unrealised PnL first): the fewest orders bring gross exposure down. Each trim is the
    smallest qty of that position that restores both limits, found by bisection, or the whole
    position when that is not enough. `exit_cost` (fee + slippage, a fraction of notional) is
    charged to equity (`_Book.cost`), so the account is inside the limits after the fills too.
    `tradable(symbol)` False (no bar, so no price to fill at now): that position still counts
    but is not chosen, so a trim that cannot fill never stands in for one that can; when no
    tradable position is enough, the event says the account is still outside after the trims.
    """
    max_exposure, min_ratio = limits.max_exposure_fraction, limits.min_margin_ratio
    notional = {s: p.qty * p.mark_price for s, p in portfolio.positions.items() if p.is_open}
    maint = {s: tiers.maintenance_margin(s, n) for s, n in notional.items()}
    book = _Book(tiers, notional, maint, portfolio.equity, exit_cost)
    exposure, ratio = _account(sum(notional.values()), book.equity, sum(maint.values()))

    def inside(account: tuple[float, float], slack: float = 0.0) -> bool:
        """Within both limits; a breach needs more than float slack, a trim aims at the limit."""
        exp, mr = account
        return exp <= max_exposure * (1 + slack) and mr >= min_ratio * (1 - slack)

    if inside((exposure, ratio), _REL_EPS):
        return LimitCheck(exposure, ratio, exposure, ratio)
    order = sorted(
        (s for s in notional if tradable is None or tradable(s)),
        key=lambda s: (-notional[s], portfolio.positions[s].unrealised_pnl, s),
    )
    stuck = len(notional) - len(order)  # positions with no price to trim at now
    trims: list[LimitTrim] = []
    account = (exposure, ratio)
    for symbol in order:
        pos = portfolio.positions[symbol]
        mark = pos.mark_price
        qty = pos.qty
        if inside(book.after(symbol, qty * mark)):
            lo = 0.0
            for _ in range(_BISECT_STEPS):
                mid = (lo + qty) / 2
                if inside(book.after(symbol, mid * mark)):
                    qty = mid
                else:
                    lo = mid
        whole = qty >= pos.qty
        account = book.after(symbol, qty * mark)
        book.close(symbol, qty * mark, whole)
        verb = "closed" if whole else "trimmed"
        trims.append(
            LimitTrim(
                symbol,
                pos.qty if whole else qty,
                whole,
                f"{verb} {qty:.6g} of {pos.qty:.6g} {symbol} (notional {qty * mark:.2f})",
            )
        )
        if inside(account):
            break
    exposure_after, ratio_after = account
    still = ""
    if not inside(account, _REL_EPS):
        still = f"; still outside: {stuck} position(s) with no price now cannot be trimmed"
    if exposure > max_exposure * (1 + _REL_EPS):
        limit, requested, applied, bound = (
            LimitName.MAX_TOTAL_EXPOSURE,
            exposure,
            exposure_after,
            max_exposure,
        )
        what = f"exposure {exposure:.4f} above {max_exposure:g}"
    else:
        limit, requested, applied, bound = (
            LimitName.MIN_MARGIN_RATIO,
            ratio,
            ratio_after,
            min_ratio,
        )
        what = f"margin ratio {ratio:.4f} below {min_ratio:g}"
    events = tuple(
        SafetyEvent(
            ts,
            trim.symbol,
            limit,
            requested,
            applied,
            bound,
            SafetyAction.CLIP,
            f"{what} at the bar close: REDUCING, {trim.detail}; "
            f"exposure {exposure_after:.4f}, margin ratio {ratio_after:.4f} after{still}",
        )
        for trim in trims
    ) or (
        SafetyEvent(
            ts,
            max(notional, key=lambda s: (notional[s], s)),
            limit,
            requested,
            applied,
            bound,
            SafetyAction.CLIP,
            f"{what} at the bar close: REDUCING, nothing trimmed{still}",
        ),
    )
    return LimitCheck(exposure, ratio, exposure_after, ratio_after, tuple(trims), events, True)


@dataclass(frozen=True, slots=True)
class LimitGuard:
    """What the loop does at a bar close to hold the limits: set `state`, journal `events`,
    then apply `exits` (reduce-only, through the exit path) before writing the equity row."""

    state: TradingState
    exits: tuple[ExitAction, ...] = ()
    events: tuple[SafetyEvent, ...] = ()
    check: LimitCheck | None = None


# the guard of the common bar (clearly inside, nothing to do), one per state: no object per bar
_INSIDE = {state: LimitGuard(state) for state in TradingState}
_LONG = Side.LONG


class RiskKernel:
    """Hard limits applied to decisions (`check`), to exit orders (`check_order`) and to the
    account at every bar close (`hold_limits`).

    The venue's costs, as fractions of a fill's notional, come once, here:
    `entry_cost` is what an entry's fill can cost at worst (taker fee and slippage,
    `BrokerConfig.entry_cost`): `check` holds the size, exposure and margin limits on the
    account as it is after that fill, not only at the reference price, so an entry landing on
    a limit does not leave the bar's equity row above it. `exit_cost` is an exit leg's
    (`BrokerConfig.exit_cost`): `hold_limits` sizes its trims so the account is inside after
    they fill.
    """

    __slots__ = (
        "limits", "tiers", "entry_cost", "exit_cost", "zone", "limit_reducing", "_top_rate"
    )  # fmt: skip

    def __init__(
        self,
        limits: SafetyLimits,
        tiers: LeverageTiers,
        entry_cost: float = 0.0,
        exit_cost: float = 0.0,
    ) -> None:
        for name, cost in (("entry_cost", entry_cost), ("exit_cost", exit_cost)):
            if not (math.isfinite(cost) and 0 <= cost < 1):
                raise ValueError(f"{name} must be a fraction in [0, 1), got {cost!r}")
        self.limits = limits
        self.tiers = tiers
        self.entry_cost = entry_cost
        self.exit_cost = exit_cost
        self.zone = AutonomyZone.for_limits(limits)
        # True while trading is REDUCING because of a limit (not an operator): lifted by the
        # next bar close that finds the account inside the limits. Every operator control sets
        # it False (EngineLoop.apply_control): an operator's REDUCING is never lifted here.
        self.limit_reducing = False
        self._top_rate: dict[str, float] = {}  # per symbol: its highest maintenance rate

    def _clearly_inside(self, portfolio: Portfolio) -> bool:
        """A cheap sufficient test for the every-bar check: exposure inside, and margin ratio
        inside even if every position paid its top bracket's maintenance rate (maintenance =
        notional x rate - cum <= notional x top rate). False means: compute exactly."""
        gross = bound = upnl = 0.0
        rates = self._top_rate
        for symbol, p in portfolio.positions.items():
            q, m = p.qty, p.mark_price
            n = q * m
            rate = rates.get(symbol)
            if rate is None:
                rate = rates[symbol] = max(
                    t.maintenance_margin_rate for t in self.tiers.tiers(symbol)
                )
            gross += n
            bound += n * rate
            upnl += (q if p.side is _LONG else -q) * (m - p.entry_price)
        equity = portfolio.wallet_balance + upnl
        limits = self.limits
        return (
            equity > 0
            and gross <= limits.max_exposure_fraction * equity
            and equity - bound >= limits.min_margin_ratio * equity
        )

    def hold_limits(
        self,
        portfolio: Portfolio,
        ts: int,
        tradable: Callable[[str], bool] | None = None,
    ) -> LimitGuard:
        """The account against exposure and margin ratio at this bar close (module docstring).

        Outside a limit: state REDUCING (from ACTIVE), reduce-only trims and their CLIP events.
        Inside and REDUCING by an earlier breach: back to ACTIVE. HALTED and an operator's
        REDUCING are kept. `tradable(symbol)`: whether that position has a price to be trimmed
        at now.
        """
        state = portfolio.state
        if not portfolio.positions or self._clearly_inside(portfolio):
            check = None
        else:
            check = limit_trims(portfolio, self.limits, self.tiers, ts, self.exit_cost, tradable)
        if check is None or not check.breached:
            if self.limit_reducing and state is TradingState.REDUCING:
                state = TradingState.ACTIVE
            self.limit_reducing = False
            return LimitGuard(state, (), (), check) if check is not None else _INSIDE[state]
        if state is TradingState.ACTIVE:
            state, self.limit_reducing = TradingState.REDUCING, True
        exits = tuple(
            ExitAction(t.symbol, OrderPurpose.RISK_REDUCE, t.qty, detail=t.detail)
            for t in check.trims
        )
        return LimitGuard(state, exits, check.events, check)

    def margin_ratio(
        self, portfolio: Portfolio, prices: Mapping[str, float] | None = None
    ) -> float:
        return margin_ratio(portfolio, self.tiers, prices)

    # -- decisions ---------------------------------------------------------------------------

    def check(self, decision: Decision, portfolio: Portfolio, price: float) -> RiskVerdict:
        """Clip or veto one entry decision against the limits, at the price it would fill near.

        Order: trading state, one position per symbol, completeness/zone, inputs, size clip,
        bracket (notional cap, leverage clip), exposure, margin ratio, free margin. Each limit
        is checked after the fill: equity less `entry_cost` of the notional, the new position
        marked up to (1 + `entry_cost`) of it (a short's fill below the reference).
        """
        if decision.skip is not None:
            return RiskVerdict(False, decision, decision)
        ts, symbol = decision.ts, decision.symbol
        events: list[SafetyEvent] = []

        def veto(
            limit: LimitName, reason: SkipReason, requested: float, bound: float, detail: str
        ) -> RiskVerdict:
            events.append(
                SafetyEvent(
                    ts, symbol, limit, requested, None, bound, SafetyAction.VETO, detail, reason
                )
            )
            return RiskVerdict(False, decision.as_skip(reason, detail), decision, tuple(events))

        limits = self.limits
        state = portfolio.state
        if state is TradingState.HALTED:
            return veto(
                LimitName.TRADING_STATE,
                SkipReason.STATE_HALTED,
                0.0,
                0.0,
                "trading is HALTED: nothing new is sent",
            )
        if state is TradingState.REDUCING:
            return veto(
                LimitName.TRADING_STATE,
                SkipReason.STATE_REDUCING,
                0.0,
                0.0,
                "trading is REDUCING: only orders that reduce a position pass",
            )
        held = portfolio.positions.get(symbol)
        if held is not None and held.is_open:
            return veto(
                LimitName.ONE_POSITION_PER_SYMBOL,
                SkipReason.ALREADY_IN_POSITION,
                0.0,
                0.0,
                f"{symbol} already has a {held.side} position; only the exit controller changes it",
            )

        # completeness and zone, with the two clippable upper bounds taken out of the zone check
        leverage, size = decision.leverage, decision.size_pct
        zone = self.zone
        probe = decision
        if (_finite_positive(leverage) and leverage > zone.max_leverage) or (
            _finite_positive(size) and size > zone.max_size_pct
        ):
            probe = decision.with_changes(
                leverage=min(leverage, zone.max_leverage)
                if _finite_positive(leverage)
                else leverage,
                size_pct=min(size, zone.max_size_pct) if _finite_positive(size) else size,
            )
        problem = zone.explain(probe)
        if problem is not None:
            return veto(LimitName.AUTONOMY_ZONE, problem[0], 0.0, 0.0, problem[1])
        assert leverage is not None and size is not None  # explain() guarantees both

        equity, gross, maint_now, margin_now = _book(portfolio, self.tiers)
        if not _finite_positive(price):
            return veto(
                LimitName.INPUTS, SkipReason.NO_PRICE, 0.0, 0.0, f"no usable price: {price!r}"
            )
        if not _finite_positive(equity):
            return veto(
                LimitName.INPUTS, SkipReason.NO_EQUITY, equity, 0.0, f"equity is {equity:g}"
            )
        if not self.tiers.has(symbol):
            return veto(
                LimitName.BRACKET_LEVERAGE,
                SkipReason.BRACKET_EXCEEDED,
                leverage,
                0.0,
                f"no leverage brackets known for {symbol} ({self.tiers.source or 'tiers given'})",
            )

        cost = self.entry_cost
        max_size = limits.max_position_fraction
        # the largest size whose notional is max_size of the equity left after the fill
        size_cap = max_size / (1 + max_size * cost)
        if size > size_cap:
            events.append(
                SafetyEvent(
                    ts,
                    symbol,
                    LimitName.MAX_POSITION_SIZE,
                    size,
                    size_cap,
                    max_size,
                    SafetyAction.CLIP,
                    f"size {size:g} of equity clipped to {size_cap:.6g}"
                    + (f" ({max_size:g} after the fill's cost)" if cost else ""),
                )
            )
            size = size_cap
        notional = equity * size
        equity_after = equity - notional * cost
        marked = notional * (1 + cost)

        cap = self.tiers.max_notional(symbol)
        if notional > cap:
            return veto(
                LimitName.BRACKET_NOTIONAL,
                SkipReason.BRACKET_EXCEEDED,
                notional,
                cap,
                f"notional {notional:.2f} above the top bracket {cap:.2f} of {symbol}",
            )
        bracket_max = self.tiers.max_leverage(symbol, notional)
        lev_cap = min(limits.max_leverage, bracket_max)
        if leverage > lev_cap:
            limit = (
                LimitName.MAX_LEVERAGE
                if limits.max_leverage <= bracket_max
                else LimitName.BRACKET_LEVERAGE
            )
            events.append(
                SafetyEvent(
                    ts,
                    symbol,
                    limit,
                    leverage,
                    lev_cap,
                    lev_cap,
                    SafetyAction.CLIP,
                    f"leverage {leverage:g}x clipped to {lev_cap:g}x "
                    f"(limit {limits.max_leverage:g}x, bracket {bracket_max:g}x at {notional:.2f})",
                )
            )
            leverage = lev_cap

        max_exposure = limits.max_exposure_fraction
        exposure_after = (gross + marked) / equity_after
        if exposure_after > max_exposure * (1 + _REL_EPS):
            return veto(
                LimitName.MAX_TOTAL_EXPOSURE,
                SkipReason.EXPOSURE_LIMIT,
                exposure_after,
                max_exposure,
                f"total exposure would be {exposure_after:.4f} of equity, limit {max_exposure:g}",
            )

        maint_after = maint_now + self.tiers.maintenance_margin(symbol, marked)
        ratio_after = ratio_of(equity_after, maint_after)
        min_ratio = limits.min_margin_ratio
        if ratio_after < min_ratio * (1 - _REL_EPS):
            return veto(
                LimitName.MIN_MARGIN_RATIO,
                SkipReason.MARGIN_LIMIT,
                ratio_after,
                min_ratio,
                f"margin ratio would fall to {ratio_after:.4f}, limit {min_ratio:g}",
            )

        margin_after = margin_now + marked / leverage
        if margin_after > equity_after * (1 + _REL_EPS):
            return veto(
                LimitName.AVAILABLE_MARGIN,
                SkipReason.INSUFFICIENT_MARGIN,
                margin_after / equity_after,
                1.0,
                f"initial margin would be {margin_after:.2f} USDT, equity {equity_after:.2f}",
            )

        approved = decision
        if leverage != decision.leverage or size != decision.size_pct:
            approved = decision.with_changes(leverage=leverage, size_pct=size)
        return RiskVerdict(True, approved, decision, tuple(events), notional, notional / price)

    # -- exit orders -------------------------------------------------------------------------

    def check_order(self, order: Order, portfolio: Portfolio) -> SafetyEvent | None:
        """None if the trading state lets this order through, else the veto event.

        HALTED: nothing new (resting exchange-side backstops are not re-checked: they already
        exist). REDUCING: only reduce-only orders against an open position of the other side.
        """
        state = portfolio.state
        if state is TradingState.ACTIVE and not order.reduce_only:
            return None
        held = portfolio.positions.get(order.symbol)
        reduces = (
            order.reduce_only
            and held is not None
            and held.is_open
            and held.side is order.side.opposite
        )
        if state is TradingState.HALTED:
            reason, detail = SkipReason.STATE_HALTED, "trading is HALTED: nothing new is sent"
        elif reduces:
            return None
        elif order.reduce_only:
            reason = SkipReason.BAD_DECISION
            detail = f"reduce-only {order.side} order but no opposite position on {order.symbol}"
        else:
            reason = SkipReason.STATE_REDUCING
            detail = "trading is REDUCING: only orders that reduce a position pass"
        return SafetyEvent(
            order.ts,
            order.symbol,
            LimitName.TRADING_STATE,
            order.qty,
            None,
            0.0,
            SafetyAction.VETO,
            f"{order.purpose}: {detail}",
            reason,
        )


def check_decision(
    decision: Decision,
    portfolio: Portfolio,
    limits: SafetyLimits,
    tiers: LeverageTiers,
    price: float,
) -> RiskVerdict:
    """Functional form of `RiskKernel(limits, tiers).check(decision, portfolio, price)`."""
    return RiskKernel(limits, tiers).check(decision, portfolio, price)
