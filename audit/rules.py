"""The audit rules: one small class per syntactic form, each with its own examples.

A rule names a form (where a literal sits: module constant, `.get` default, comparison operand...)
and explains why it matters. Which literal is a trading decision is decided once, by `Judge`, from
the vocabulary of the names around it. Every rule carries `INVALID` snippets (with the finding
they must produce) and `VALID` snippets (that must produce nothing); one shared test turns each
example of each rule into a test case, so adding a rule adds its tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import ClassVar

import libcst as cst

from audit.config import AuditConfig
from audit.finding import Category, Finding, Severity
from audit.vocabulary import Match, Vocabulary, words

_PLACEHOLDER = re.compile(
    r"^(?:|x+|\*+|\.+|changeme|change_me|your[_ -].*|<.*>|\$\{.*\}|\{\{.*\}\}|none|null|test|dummy|example|redacted|secret|password)$",
    re.IGNORECASE,
)
# An environment-variable name: upper-case words joined by underscores (`BINANCE_API_KEY`). A
# credential can be upper-case too (`AKIA4Q2ZR7XK9PLM3VBN`): case alone never decides.
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# A symbol: `BTCUSDT`, or a base and a quote currency joined by -, / or _ (`ETH/USDT:USDT`,
# `BTC-PERP`); `TREND_LONG` is a label, not a pair.
SYMBOL = re.compile(
    r"^(?:[A-Z0-9]{2,15}(?:USDT|USDC|BUSD|USD|BTC|ETH|PERP)"
    r"|[A-Z0-9]{2,15}[-/_](?:USDT|USDC|BUSD|FDUSD|TUSD|DAI|USD|BTC|ETH|BNB|EUR|PERP|SWAP)"
    # OKX-style instrument ids: `BTC-USDT-SWAP`, `BTC-USD-250627`
    r"(?:-(?:SWAP|PERP|\d{6}))?"
    r"(?::[A-Z0-9]{2,10})?)$"
)
_QUOTE = re.compile(r"(?:USDT|USDC|BUSD|USD|BTC|ETH|PERP|EUR)(?:-(?:SWAP|PERP|\d{6}))?(?::|$)")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{1,48}$")
_SWITCH_WORDS = frozenset(
    {"use", "enable", "enabled", "require", "requires", "allow", "only", "disable", "skip", "avoid",
     "block", "filter", "confirm", "check"}
)  # fmt: skip
# Past participles of state flags (`tp1_placed`, `tp2_active`, `sl_moved`): False means "not yet".
_STATE_FLAG_WORDS = frozenset(
    {"placed", "done", "active", "filled", "sent", "opened", "closed", "triggered", "hit",
     "moved", "armed", "executed", "submitted", "cancelled", "canceled", "synced", "set"}
)  # fmt: skip
_PARAMS_WORDS = frozenset(
    {"params", "parameters", "param", "settings", "config", "cfg", "strategy"}
)
_UNIT_WORDS = frozenset(
    {"pct", "percent", "percentage", "bps", "ms", "sec", "secs", "seconds", "hours", "days", "per"}
)
# Names made of unit words only (`PERCENT = 100`, `MS_PER_SECOND = 1000`, `ONE_BPS = 0.0001`):
# a conversion value under such a name is a unit; under `FAKE_MOVE_BODY_PCT` it is a threshold.
_UNIT_NAMES = _UNIT_WORDS | frozenset(
    {"s", "second", "minute", "minutes", "min", "mins", "hour", "day", "week", "weeks", "year",
     "years", "us", "ns", "basis", "point", "points", "unit", "units", "one", "to", "in", "a",
     "hundred", "thousand", "million", "mb", "kb", "bytes"}
)  # fmt: skip
_DURATION_WORDS = frozenset(
    {"ms", "sec", "secs", "second", "seconds", "minute", "minutes", "mins", "hour", "hours", "day",
     "days"}
)  # fmt: skip
# A cost of trading (the venue's fee, a backtest's slippage assumption) is a fact or an
# assumption, not a decision, unless a bound word makes it a limit (`MAX_SLIPPAGE_BPS`).
_COST_NAMES = frozenset({"fee", "fees", "slippage", "commission", "commissions", "taker", "maker"})
_BOUND_NAMES = frozenset(
    {"max", "min", "limit", "cap", "threshold", "thresh", "ceiling", "floor", "bound", "allowed"}
)
# Lookback words that make a key neutral elsewhere (`window`, `length`) but are the signal's own
# parameters in a strategy's parameter dict (`{"window": 20, "std_dev": 2}`).
_LOOKBACK_KEYS = frozenset(
    {"window", "windows", "length", "len", "lookback", "period", "periods", "span"}
)
# Names that say where code lives, not which strategy trades (`STRATEGY_PACKAGE = "strategy.x"`).
_LOCATION_NAMES = frozenset(
    {"package", "pkg", "module", "modules", "path", "dir", "directory", "folder", "file", "prefix",
     "namespace", "import"}
)  # fmt: skip
# Keywords that give an indicator its period (`ta.atr(h, l, c, length=5)`, `talib.RSI(c, timeperiod=14)`).
_PERIOD_KEYS = frozenset(
    {"length", "period", "periods", "timeperiod", "window", "span", "lookback", "n", "fast", "slow",
     "signal", "fastperiod", "slowperiod", "signalperiod", "k", "d", "smooth_k", "smooth_d"}
)  # fmt: skip
# A grade (`"A"`, `"B+"`) under a bound word and a grade word (`MIN_TIER_TO_SEND`) is a threshold.
_GRADE = re.compile(r"^[A-F][+-]?$")
_GRADE_NAMES = frozenset({"tier", "tiers", "grade", "grades", "rating", "rank"})
# Parameter names of a helper's window besides the period keywords (`baseline=20`).
_WINDOW_PARAM_NAMES = frozenset(
    {"lookback", "baseline", "bars", "candles", "window", "look", "ahead", "back", "last", "check",
     "recent", "left", "right"}
)  # fmt: skip
# Keywords that say "lookback" and nothing else (`lookback=55`, `window_bars=14`, `period=10`).
_LOOKBACK_KEYWORD_PARTS = frozenset(
    {"period", "periods", "timeperiod", "lookback", "look", "back", "span", "window", "windows",
     "length", "bars", "candles", "n"}
)  # fmt: skip
# A grade is given from a score under a grade's name (`def grade(points)`, `tier = ...`): one of
# these words must be around a cut-off (they also feed the pre-filter, audit.prefilter).
_GRADE_CUTOFF_WORDS = frozenset(
    {"grade", "grades", "tier", "tiers", "rating", "ratings", "rank", "score", "scores", "points",
     "pts", "confidence", "strength"}
)  # fmt: skip
_PERCENT_WORDS = frozenset({"pct", "percent", "percentage"})
# A size relative to a price (`tolerance_pct`, `gap_ratio`, `band_bps`).
_RELATIVE_WORDS = frozenset({"pct", "percent", "percentage", "ratio", "bps", "frac", "fraction"})
# Names of market data a helper takes the last bars of (`highs`, `df["close"]`, `candles`).
_MARKET_SERIES = frozenset(
    {"candles", "candle", "bars", "klines", "kline", "ohlc", "ohlcv", "df", "highs", "lows",
     "high", "low", "close", "closes", "open", "opens", "prices", "price", "volume", "volumes",
     "returns", "series"}
)  # fmt: skip
# Moving averages named as such (`precompute_vol_avg(candles, window=20)`), besides the
# vocabulary's indicators (`ema`, `sma`, `rsi`...).
_AVERAGE_CALL_WORDS = frozenset({"avg", "average", "moving_average"})
# Names of code that only draws: an indicator computed there is an overlay, not a signal.
_DRAWING_NAMES = frozenset(
    {"chart", "charts", "plot", "plots", "overlay", "draw", "render", "dashboard"}
)
# Periods per year: their square root annualises a ratio metric (`sharpe * 252 ** 0.5`).
_PERIODS_PER_YEAR = frozenset({52.0, 252.0, 360.0, 365.0, 8760.0, 525600.0})
# Forms whose literal is a decision only by a generic word or by its context: outside trading code
# they are kept only when reachability finds their path to an order or risk call.
# (a fallback only when a constructor sets up an instance's state).
_CONTEXT_ONLY_FORMS = frozenset({"weight", "fraction", "clamp", "assign-fallback", "or-fallback"})
_FALLBACK_ROLES = frozenset({"assign-fallback", "or-fallback"})
_EXIT_FUNCTION_WORDS = frozenset(
    {
        "exit",
        "exits",
        "risk",
        "stop",
        "scale",
        "sizing",
        "size",
        "kelly",
        "entry",
        "harvest",
        "trail",
    }
)


@dataclass(frozen=True, slots=True)
class Reported:
    """A finding before positions are known, with the nodes that will give them."""

    finding: Finding
    node: cst.CSTNode
    statement: cst.CSTNode | None
    tentative: bool = False  # kept only when reachability finds a path to an order or risk call
    check_flow: bool = True  # dropped when every path ends in display or plumbing
    # the node whose value the flow search follows instead of the literal's (a period passed to
    # a helper: where the helper's result goes, not the slice the period becomes inside it)
    flow_from: cst.CSTNode | None = None


@dataclass
class Site:
    """A literal and the role it plays, as found by the scanner."""

    node: cst.CSTNode
    statement: cst.CSTNode | None  # the statement holding it: suppression comments attach there
    value: str
    scope: str
    function: str
    klass: str
    in_dataclass: bool
    module_level: bool
    class_level: bool
    role: str = ""
    enclosing_keys: list[str] = field(default_factory=list)  # outer dict keys of a dict value
    names: list[str] = field(default_factory=list)
    secondary: list[str] = field(default_factory=list)
    callee: str = ""
    receiver: str = ""  # `params` in `params.get(...)`
    vote: bool = False  # a comparison of `sum(...)`/`len(...)` of conditions
    ratio: bool = False  # the literal scales one side of a comparison (`x > 1.2 * avg`)
    call: cst.CSTNode | None = None  # the call a call argument is passed to
    grade: str = ""  # the name of the grade a comparison picks (`grade = "A" if p >= 5 else "B"`)
    rejects: bool = False  # a comparison whose `if` only refuses (reports, returns False, raises)
    params: tuple[str, ...] = ()  # the parameters of the function a parameter default belongs to
    # the parameter it binds is a trailing window in the helper's body, defined in this module
    # (`def _sma(values, n): return sum(values[-n:]) / n`)
    helper_window: bool = False

    def with_role(self, role: str) -> Site:
        return replace(self, role=role)


@dataclass(frozen=True)
class Example:
    code: str
    name: str = ""
    value: str = ""
    category: Category | None = None


class Rule:
    """One form of hardcoded value. Subclasses set the class attributes; rules are discovered."""

    rule_id: ClassVar[str]
    roles: ClassVar[tuple[str, ...]]
    title: ClassVar[str]
    why: ClassVar[str]  # one line; {name}, {value}, {where}, {category} are filled in
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[Example, ...]] = ()


class ModuleOrClassConstant(Rule):
    rule_id = "constant"
    roles = ("constant",)
    title = "Trading value in a module or class constant"
    why = "{name} = {value} is a {category} decision frozen in a constant in {where}"
    VALID = (
        "PORT = 8080",
        "CACHE_TTL_SEC = 300",
        "MAX_RETRIES = 3",
        "VERSION = 2",
        "EPS = 1e-9",
        "KLINE_LIMIT = 1500",  # a kline page size
        "WARMUP_BARS = 200",  # bars needed before indicators are defined
        "ONE_PERCENT = 0.01",  # a unit, named as one
        # the venue's fee and a backtest's slippage: a fact and an assumption, not decisions
        "BACKTEST_TAKER_FEE = 0.0004\nBACKTEST_SLIPPAGE = 0.0002",
    )
    INVALID = (
        Example("MAX_SYMBOLS = 10", "MAX_SYMBOLS", "10", Category.SYMBOL_SELECTION),
        Example("MIN_SIGMA = 0.005", "MIN_SIGMA", "0.005", Category.SYMBOL_SELECTION),
        Example(
            "class Cfg:\n    K_CLOSE_THRESHOLD = 0.650",
            "K_CLOSE_THRESHOLD",
            "0.650",
            Category.KILL_SCORE,
        ),
        Example("max_hold_sec = 3600", "max_hold_sec", "3600", Category.HARVEST),
        # the profit level that arms a trailing take-profit
        Example("PROFIT_EXPECT = 0.05", "PROFIT_EXPECT", "0.05", Category.STOP_LOSS_TAKE_PROFIT),
        # a 1 % entry threshold: 0.01 is a unit only under a unit's name
        Example("FAKE_MOVE_BODY_PCT = 0.010", "FAKE_MOVE_BODY_PCT", "0.010", Category.OTHER),
        # the sizes of a martingale's adds
        Example(
            "MARTINGALE_PCTS = [0.01009, 0.02523, 0.06307]",
            "MARTINGALE_PCTS",
            "0.01009",
            Category.POSITION_SIZING,
        ),
    )


class EnvDefault(Rule):
    rule_id = "env-default"
    roles = ("env-default",)
    title = "Trading value hidden in an environment-variable default"
    why = "{name} falls back to {value} when the environment does not set it ({where}): a hidden {category} default"
    VALID = ('PORT = int(os.getenv("PORT", "8080"))', 'DB = os.environ.get("DB_URL", "sqlite://")')
    INVALID = (
        Example(
            'MAX_NOTIONAL = float(os.getenv("GOV_MAX_NOTIONAL_PER_TRADE_USDT", "200"))',
            "GOV_MAX_NOTIONAL_PER_TRADE_USDT",
            '"200"',
            Category.POSITION_SIZING,
        ),
        Example(
            'K = float(os.environ.get("K_CLOSE_THRESHOLD", 0.65))',
            "K_CLOSE_THRESHOLD",
            "0.65",
            Category.KILL_SCORE,
        ),
        Example(
            'class S:\n    MAX_LEVERAGE: int = int(os.getenv("MAX_LEVERAGE", "10"))',
            "MAX_LEVERAGE",
            '"10"',
            Category.LEVERAGE,
        ),
        Example(
            'p.add_argument("--budget", default=os.getenv("BOT_BUDGET", "500"))',
            "BOT_BUDGET",
            '"500"',
            Category.POSITION_SIZING,
        ),
    )


class FieldDefault(Rule):
    rule_id = "field-default"
    roles = ("field-default",)
    title = "Trading value as a dataclass or model field default"
    why = "{name} defaults to {value} in {where}: a bare constructor call silently trades on it"
    VALID = ("@dataclass\nclass Conn:\n    port: int = 6379\n    timeout_sec: float = 5.0",)
    INVALID = (
        Example(
            "@dataclass\nclass HarvestTheta:\n    T1_R: float = 2.0",
            "T1_R",
            "2.0",
            Category.HARVEST,
        ),
        Example(
            "@dataclass\nclass HarvestTheta:\n    kill_threshold: float = 0.6",
            "kill_threshold",
            "0.6",
            Category.KILL_SCORE,
        ),
        Example(
            "class P(BaseModel):\n    leverage: float = Field(default=10.0)",
            "leverage",
            "10.0",
            Category.LEVERAGE,
        ),
        Example(
            "@dataclass\nclass Account:\n    maint_margin_rate: float = 0.005",
            "maint_margin_rate",
            "0.005",
            Category.LEVERAGE,
        ),
    )


class FieldBound(Rule):
    rule_id = "field-bound"
    roles = ("field-bound",)
    title = "Trading bound in a model field's validation"
    why = (
        "{name} is bounded by {value} in {where}: a limit on a {category} decision written by hand"
    )
    VALID = ("class P(BaseModel):\n    retries: int = Field(3, ge=0, le=10)",)
    INVALID = (
        Example(
            "class P(BaseModel):\n    T1_R: float = Field(2.0, ge=0.5, le=10)",
            "T1_R",
            "0.5",
            Category.HARVEST,
        ),
    )


class AssignmentFallback(Rule):
    rule_id = "assign-fallback"
    roles = ("assign-fallback", "or-fallback")
    title = "Trading value assigned in code (a fallback)"
    why = "{name} is set to {value} in {where}: a hardcoded {category} fallback"
    VALID = (
        "def f():\n    retries = 3\n    count = 0\n    timeout = timeout or 30",
        # a counter set on the first entry of a martingale
        "def on_entry(state):\n    state.martingale_level = 1",
        # state a print-only monitor sets up in its constructor
        "class PairMonitor:\n    def __init__(self):\n        self.expected_ratio = 6751 / 616\n"
        "    def show(self, ratio):\n        print(ratio / self.expected_ratio)",
        # what a ratio is when its divisor is zero (a division guard)
        "def f(x, lo, hi):\n    band_pct = (x - lo) / (hi - lo) if hi - lo > 0 else 0.5",
        # a command's fallback that is only shown
        "def on_command(parts):\n    n = int(parts[1]) if len(parts) > 1 else 30\n    print(n)",
    )
    INVALID = (
        Example("def f(self):\n    leverage = 10.0", "leverage", "10.0", Category.LEVERAGE),
        Example(
            "def f(x, lo, hi, ok):\n    stop_pct = (x - lo) / (hi - lo) if ok else 0.5",
            "stop_pct",
            "0.5",
            Category.STOP_LOSS_TAKE_PROFIT,
        ),
        Example(
            "def f(lev):\n    if lev is None:\n        lev = 10\n", "lev", "10", Category.LEVERAGE
        ),
        Example(
            "def f(size_usd):\n    size_usd = size_usd or 200.0",
            "size_usd",
            "200.0",
            Category.POSITION_SIZING,
        ),
        Example(
            "def f(self):\n    self.position_size_usd = 200.0",
            "position_size_usd",
            "200.0",
            Category.POSITION_SIZING,
        ),
        # a conditional's fallback under a name that says nothing, stored later under one that does
        Example(
            "def on_command(config, parts):\n    n = int(parts[1]) if len(parts) > 1 else 30\n"
            "    config.top_n = max(5, min(100, n))",
            "top_n",
            "30",
            Category.SYMBOL_SELECTION,
        ),
    )


class GetDefault(Rule):
    rule_id = "get-default"
    roles = ("get-default",)
    title = "Trading value as a .get() or getattr() default"
    why = "{name} falls back to {value} when missing ({where}): the migration must fail closed instead"
    VALID = (
        't = cfg.get("timeout", 30)',
        'n = getattr(o, "retries", 3)',
        # a leverage default used only to render a copied position
        'def _row(pos):\n    lev = pos.get("leverage", 10)\n    return f"{pos.symbol} {lev}x"',
    )
    INVALID = (
        Example('t1 = params.get("T1_R", 2.0)', "T1_R", "2.0", Category.HARVEST),
        Example('lock = getattr(cfg, "lock_R", 1.5)', "lock_R", "1.5", Category.HARVEST),
    )


class ParamDefault(Rule):
    rule_id = "param-default"
    roles = ("param-default",)
    title = "Trading value as a function parameter default"
    why = "{name}={value} is a default argument of {where}: callers that omit it trade on a hardcoded {category}"
    VALID = (
        "def connect(host, port=6379, timeout=5.0): ...",
        "def check_exit(pos, price, timeout_sec=5.0): ...",
        "def draw_fvg_chart(ax, max_width_px=800): ...",
    )
    INVALID = (
        Example(
            "def open_position(symbol, leverage=10, size_usd=200.0): ...",
            "leverage",
            "10",
            Category.LEVERAGE,
        ),
        Example(
            "def check_scale_out(pos, price, scale_r=0.5):\n    return price > pos.entry + scale_r",
            "scale_r",
            "0.5",
            Category.HARVEST,
        ),
        Example(
            "def exit_on_giveback(pos, price, giveback=0.4):\n    return pos.peak - price > giveback",
            "giveback",
            "0.4",
            Category.OTHER,
        ),
        # a relative tolerance given to a helper of candles (what counts as equal highs)
        Example(
            "from binance.ohlc_buffer import Candle\n\n"
            "def detect_liquidity_zones(candles, lookback=40, tolerance_pct=0.001):\n"
            "    return [c for c in candles if c.high * tolerance_pct > 1]",
            "tolerance_pct",
            "0.001",
            Category.OTHER,
        ),
        # a bound an indicator's helper puts on what it detects, under a word plumbing uses too
        Example(
            "def detect_fvg_around(candles, i, max_width_pct=0.008):\n"
            "    return candles[i].width < max_width_pct",
            "max_width_pct",
            "0.008",
            Category.OTHER,
        ),
    )


class CallArgument(Rule):
    rule_id = "call-arg"
    roles = ("call-arg",)
    title = "Trading value passed as a call argument"
    why = "{name} gets {value} in a call in {where}: a hardcoded {category} decision"
    VALID = (
        "time.sleep(1)",
        "range(5)",
        "round(x, 2)",
        # comparison precision in an exit check
        "def check_exit(self, price):\n    if price.__round__(8) <= self.sl.__round__(8):\n"
        "        client.create_order(self.symbol, 'SELL', self.qty)",
        'log.info("lev %s", 10)',
        "requests.get(u, timeout=10)",
        # a positional argument whose parameter, defined here, is plumbing
        "def fetch(symbol, retries):\n    pass\n\ndef run_bot():\n    fetch('BTC', 5)",
    )
    INVALID = (
        Example("theta = HarvestTheta(T1_R=2.0)", "T1_R", "2.0", Category.HARVEST),
        Example("client.set_leverage(10)", "set_leverage", "10", Category.LEVERAGE),
        # a positional argument named by the signature of a method of this module
        Example(
            "class Expert:\n    def add_signal(self, side, strength, reason):\n"
            "        self.signals.append((side, strength, reason))\n"
            "    def uptrend(self):\n        self.add_signal('BUY', 40, 'aligned')",
            "strength",
            "40",
            Category.OTHER,
        ),
    )


class DictValue(Rule):
    rule_id = "dict-value"
    roles = ("dict-value",)
    title = "Trading value under a decision key in a dict"
    why = "{name}: {value} in a dict in {where}: a hardcoded {category} decision"
    VALID = ('opts = {"timeout": 30, "port": 8080}',)
    INVALID = (
        Example(
            'p = {"tp_pct": 6.0, "sl_pct": 2.5}', "tp_pct", "6.0", Category.STOP_LOSS_TAKE_PROFIT
        ),
    )


class ComparisonOperand(Rule):
    rule_id = "comparison"
    roles = ("comparison",)
    title = "Trading threshold in a comparison"
    why = "{name} is compared with {value} in {where}: a hardcoded {category} threshold"
    VALID = (
        "if retries >= 3: pass",
        "if len(xs) > 0: pass",
        "if resp.status_code == 200: pass",
        # the bounds of what can be set at all, in a validation that refuses the setting
        "class Config:\n    def validate(self):\n        if self.leverage > 125:\n"
        "            print('at most 125x')\n            return False\n"
        "        if self.max_position_pct > 100:\n            raise ValueError('0-100 %')",
    )
    INVALID = (
        Example("if kill_score >= 0.65:\n    close()", "kill_score", "0.65", Category.KILL_SCORE),
        Example("if lev <= 10:\n    tier = 1", "lev", "10", Category.LEVERAGE),
        # the account's size gates trading: a minimum balance, a compounding stage
        Example(
            "class RiskManager:\n    def validate_trade(self, balance):\n"
            "        if balance < 10:\n            return False",
            "balance",
            "10",
            Category.POSITION_SIZING,
        ),
        Example(
            "class RiskManager:\n    def on_close(self):\n        if self.stage_wins >= 2:\n"
            "            self.stage += 1",
            "stage_wins",
            "2",
            Category.OTHER,
        ),  # a tier's threshold compared with 100 is not a percentage
        Example(
            "def should_send_tier(score):\n    if score >= 100:\n        return True\n"
            "    return False",
            "score",
            "100",
            Category.HARVEST,
        ),
    )


class ArithmeticWeight(Rule):
    rule_id = "weight"
    roles = ("weight",)
    title = "Trading weight or factor in arithmetic"
    why = "{value} scales {name} in {where}: a hardcoded {category} weight"
    VALID = (
        "pct = x / 100",
        "def pnl(price, qty):\n    fee = price * qty * 0.0004\n    return fee",  # a venue fee
        "bps = r * 10000",
        "ms = s * 1000",
        "mid = (high + low) / 2",
        "h = sec / 3600",
        "def f(qty):\n    return qty * (1 - 1e-9)",  # a float tolerance
        # an indicator overlay drawn on a chart
        "def draw(ax, close, ema):\n    ax.plot(ema * 1.02, label='band')",
        # the annualisation of a Sharpe ratio
        "def run_backtest(r):\n    sharpe_ratio = r.mean() / r.std() * (252 ** 0.5)\n    return sharpe_ratio",
        # an outlier cut in a statistics helper that reaches no order
        "def delete_outliers(xs, mean, sd):\n    lower_bound = mean - 1.5 * sd\n"
        "    return [x for x in xs if x > lower_bound]",
        # a midpoint written as half a sum
        "from binance.ohlc_buffer import Candle\n\ndef fvg_mid(fvg_low, fvg_high):\n"
        "    return 0.5 * (fvg_low + fvg_high)",
    )
    INVALID = (
        Example(
            "score = 0.3 * volatility_score + 0.4 * trend_score",
            "volatility_score",
            "0.3",
            Category.SYMBOL_SELECTION,
        ),
        Example(
            "stop_price = entry * 0.975", "stop_price", "0.975", Category.STOP_LOSS_TAKE_PROFIT
        ),
    )


class ClampBound(Rule):
    rule_id = "clamp"
    roles = ("clamp",)
    title = "Trading bound in a min/max/clip clamp"
    why = "{name} is clamped at {value} in {where}: a hardcoded {category} bound"
    VALID = (
        "n = max(1, workers)",
        "i = min(idx, len(xs) - 1)",
        # a query limit that reaches only an HTTP call
        "def klines(symbol, limit=500):\n    limit = min(limit, 2000)\n"
        '    return requests.get(URL, params={"symbol": symbol, "limit": limit})',
    )
    INVALID = (
        Example("size_mult = min(max(x, 0.5), 1.5)", "size_mult", "0.5", Category.POSITION_SIZING),
    )


class ReturnLiteral(Rule):
    rule_id = "return"
    roles = ("return",)
    title = "Trading value returned by a decision function"
    why = "{where} returns {value}: a hardcoded {category} decision"
    VALID = ("def port():\n    return 8080", "def get_timeout():\n    return 30")
    INVALID = (
        Example(
            "def choose_leverage(sig):\n    return 5.0", "choose_leverage", "5.0", Category.LEVERAGE
        ),
    )


class SymbolList(Rule):
    rule_id = "symbol-list"
    roles = ("symbols",)
    title = "Hardcoded list of trading symbols"
    why = "{name} hardcodes {count} symbols in {where}: the universe should come from the models"
    VALID = (
        'COLUMNS = ["open", "high", "low", "close"]',
        # labels of position kinds, not pairs
        'def is_long(state):\n    return state.side in ("CONTRARIAN_LONG", "TREND_LONG")',
    )
    INVALID = (
        Example(
            'CORE_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]',
            "CORE_SYMBOLS",
            '["BTCUSDT", "ETHUSDT", "BNBUSDT"]',
            Category.SYMBOL_SELECTION,
        ),
        Example(
            'WATCH = {"BTC/USDT", "ETH/USDT"}',
            "WATCH",
            '{"BTC/USDT", "ETH/USDT"}',
            Category.SYMBOL_SELECTION,
        ),
    )


class HardcodedSecret(Rule):
    rule_id = "secret"
    roles = ("secret",)
    title = "Hardcoded credential"
    why = "{name} holds a credential written in the source ({where}); load it from the environment or a vault"
    VALID = (
        'API_KEY = os.getenv("BINANCE_API_KEY")',
        'API_KEY_ENV = "BINANCE_API_KEY"',
        'API_KEY = os.environ["BINANCE_API_KEY_V2"]',
        'password = ""',
        'API_SECRET = "your-api-secret-here"',
    )
    INVALID = (
        Example('API_KEY = "a8Fk29dLqPz01mX7"', "API_KEY", "", Category.SECRET),
        Example(
            'client = Client(api_secret="Zq81nVb7Kd02LmPq")', "api_secret", "", Category.SECRET
        ),
        Example('API_KEY = "AKIA4Q2ZR7XK9PLM3VBN"', "API_KEY", "", Category.SECRET),
    )


class DeclaredSafetyLimit(Rule):
    rule_id = "safety-limit"
    roles = ("safety-limit",)
    title = "Declared hard safety limit"
    why = "{name} = {value} declares a hard safety limit ({where}); {verdict}"
    INVALID = (
        Example(
            "MAX_LEVERAGE_HARD_CAP = 125", "MAX_LEVERAGE_HARD_CAP", "125", Category.SAFETY_LIMIT
        ),
        Example(
            "MAX_TOTAL_EXPOSURE_PCT = 300", "MAX_TOTAL_EXPOSURE_PCT", "300", Category.SAFETY_LIMIT
        ),
    )


class CliDefault(Rule):
    rule_id = "cli-default"
    roles = ("cli-default",)
    title = "Trading value as a command-line option default"
    why = "{name} defaults to {value} on the command line ({where}): a run without the flag trades on a hardcoded {category}"
    VALID = (
        'p.add_argument("--port", type=int, default=8080)',
        'p.add_argument("--log-level", default="INFO")',
        'p.add_argument("--data-dir", default="./data")',
    )
    INVALID = (
        Example(
            'p.add_argument("--cb-pause-hours", type=float, default=24)',
            "cb_pause_hours",
            "24",
            Category.OTHER,
        ),
        Example(
            'p.add_argument("-l", "--leverage", type=int, default=5)',
            "leverage",
            "5",
            Category.LEVERAGE,
        ),
        Example(
            'p.add_argument("--risk-per-trade", dest="risk", default="0.02")',
            "risk_per_trade",
            '"0.02"',
            Category.POSITION_SIZING,
        ),
        Example(
            '@click.option("--tp-pct", default=3.0)\ndef main(tp_pct): ...',
            "tp_pct",
            "3.0",
            Category.STOP_LOSS_TAKE_PROFIT,
        ),
    )


class SymbolString(Rule):
    rule_id = "symbol-string"
    roles = ("symbol-string",)
    title = "Trading symbol(s) hardcoded in a string"
    why = "{name} falls back to {value} in {where}: {count} hardcoded symbol(s) the models should choose"
    VALID = (
        'QUOTE = "USDT"',
        'def f(row):\n    return row.get("symbol", "")',
        # a chart endpoint's default symbol only reaches a data fetch and the rendering
        '@app.get("/chart")\ndef chart(symbol: str = "BTCUSDT", limit: int = 500):\n'
        "    rows = fetch_klines(symbol, limit=limit)\n"
        "    return render_chart(rows, title=symbol)",
    )
    INVALID = (
        Example(
            'p.add_argument("--symbols", default="SOLUSDT,ETHUSDT,BNBUSDT")',
            "symbols",
            '"SOLUSDT,ETHUSDT,BNBUSDT"',
            Category.SYMBOL_SELECTION,
        ),
        Example(
            '@dataclass\nclass BotConfig:\n    symbol: str = "BTCUSDT"',
            "symbol",
            '"BTCUSDT"',
            Category.SYMBOL_SELECTION,
        ),
        Example(
            'def load(data):\n    return data.get("symbol", "BTCUSDT")',
            "symbol",
            '"BTCUSDT"',
            Category.SYMBOL_SELECTION,
        ),
        Example(
            "def load_state(path):\n    if not path.exists():\n"
            '        return {"symbol": "ETH/USDT:USDT", "leverage": 5}\n'
            "    return json.loads(path.read_text())",
            "symbol",
            '"ETH/USDT:USDT"',
            Category.SYMBOL_SELECTION,
        ),
    )


class StrategyChoice(Rule):
    rule_id = "strategy-choice"
    roles = ("strategy-choice",)
    title = "Strategy chosen by a hardcoded name"
    why = "{name} defaults to the strategy {value} in {where}: which strategy trades is decided in code"
    VALID = (
        'STRATEGY_DIR = "strategies/"',
        'p.add_argument("--strategy-file", default="s.py")',
        'STRATEGY_PACKAGE = "strategy.strategies"',  # where strategies are imported from
    )
    INVALID = (
        Example(
            'p.add_argument("--strategy", default="ema_cross")',
            "strategy",
            '"ema_cross"',
            Category.OTHER,
        ),
        Example(
            'def build(cfg):\n    return cfg.get("strategy", "mean_reversion")',
            "strategy",
            '"mean_reversion"',
            Category.OTHER,
        ),
    )


class StrategyParameter(Rule):
    rule_id = "strategy-param"
    roles = ("strategy-param",)
    title = "Strategy parameter held in a class or module dict"
    why = (
        "{name}: {value} is a strategy parameter fixed in {where}: a hardcoded {category} decision"
    )
    VALID = (
        'class Client:\n    defaults = {"timeout": 10, "retries": 3}',
        'HTTP_PARAMS = {"limit": 500, "page_size": 100}',
        # not a strategy class: a client's request defaults
        'class Client:\n    def default_params(self):\n        return {"window": 20, "timeout": 10}',
    )
    INVALID = (
        Example(
            "class Divergence(Strategy):\n"
            '    defaults = {"atr_period": 14, "divergence_thresh": 0.03, "ma_fast": 20}',
            "divergence_thresh",
            "0.03",
            Category.OTHER,
        ),
        Example(
            "class Divergence(Strategy):\n"
            '    defaults = {"atr_period": 14, "divergence_thresh": 0.03, "ma_fast": 20}',
            "ma_fast",
            "20",
            Category.OTHER,
        ),
        Example(
            'STRATEGY_PARAMS = {"breakout": {"lookback_r": 1.5, "stop_atr": 2.0}}',
            "lookback_r",
            "1.5",
            Category.OTHER,
        ),
        # defaults returned by a method of a strategy class, lookback keys included
        Example(
            "class BollingerBand(BaseStrategy):\n    @classmethod\n"
            "    def default_hyperparameters(cls):\n"
            '        return {"window": 20, "std_dev": 2}',
            "window",
            "20",
            Category.OTHER,
        ),
        # the search grid an optimiser picks the traded parameters from
        Example(
            "class MACDCross(BaseStrategy):\n    def param_space(self):\n"
            '        return {"fast_period": [8, 12, 15], "slow_period": [21, 26]}',
            "fast_period",
            "12",
            Category.OTHER,
        ),
    )


class BooleanSwitch(Rule):
    rule_id = "bool-switch"
    roles = ("bool-switch",)
    title = "Decision switch with a hardcoded fallback"
    why = "{name} silently falls back to {value} in {where}: a {category} switch decided when the setting is missing{extra}"
    VALID = (
        'debug = cfg.get("debug", False)',
        'v = settings.get("verbose", True)',
        'ok = row.get("is_valid", True)',
    )
    INVALID = (
        Example(
            'def run(strategy_params):\n    return strategy_params.get("use_scale_out", True)',
            "use_scale_out",
            "True",
            Category.HARVEST,
        ),
        Example(
            "class Div(Strategy):\n"
            '    defaults = {"require_fvg": False}\n'
            "    def entry(self, params):\n"
            '        return params.get("require_fvg", True)',
            "require_fvg",
            "True",
            Category.OTHER,
        ),
    )


class ArithmeticFraction(Rule):
    rule_id = "fraction"
    roles = ("fraction",)
    title = "Trading fraction written as arithmetic"
    why = "{name} is scaled by {value} in {where}: a hardcoded {category} fraction"
    VALID = (
        "def f(high, low):\n    return (high + low) / 2",
        "def f(total):\n    total /= 1000",
        "def f(n):\n    half = n // 2\n    return half",
    )
    INVALID = (
        # the share a scale-out closes is a harvest decision (the ladder's close fraction)
        Example(
            "def check_scale_out(pos, price):\n    close_qty = pos.qty / 2\n    return close_qty",
            "close_qty",
            "2",
            Category.HARVEST,
        ),
        Example(  # the same share outside exit code is a size
            "def on_signal(pos):\n    close_qty = pos.qty / 2\n    return close_qty",
            "close_qty",
            "2",
            Category.POSITION_SIZING,
        ),
        Example(
            "def kelly_fraction(p, b):\n    f = p - (1 - p) / b\n    f /= 2.0\n    return f",
            "f",
            "2.0",
            Category.POSITION_SIZING,
        ),
        Example(
            "def on_exit(self, size):\n    size *= 0.5\n    return size",
            "size",
            "0.5",
            Category.POSITION_SIZING,
        ),
    )


class SignalThreshold(Rule):
    rule_id = "signal-threshold"
    roles = ("signal-threshold",)
    title = "Entry or exit threshold inline in signal code"
    why = "{name} is compared with {value} in {where}: a hardcoded entry/exit threshold"
    VALID = (
        "def parse(row):\n    if row.version > 3:\n        return row",
        "def render_chart(rsi):\n    if rsi > 70:\n        draw_band(rsi)",
        # labels of a report that no code here trades on
        "def market_summary(rsi):\n    summary = {}\n    if rsi > 70:\n"
        "        summary['rsi'] = 'OVERBOUGHT'\n    return summary",
        # a predicate whose subject nothing names: no decision to tell
        "def signal_rows(rows):\n    return list(filter(lambda r: r > 0.5, rows))",
        "class Strategy:\n    @retry(when=lambda e: e.code > 3)\n    def fetch(self):\n        pass",
        # enough bars, and a flat-position tolerance, in code that reads an exchange's candles
        "from binance.ohlc_buffer import Candle\n\ndef detect(candles, n, amt):\n"
        "    if n < 10 or abs(amt) < 0.0001:\n        return None\n    return candles[-1]",
    )
    INVALID = (
        # a threshold written as a ratio of two market quantities, in code that reads candles
        Example(
            "from binance.ohlc_buffer import Candle\n\ndef detect_sweep(c, avg_range):\n"
            "    total_range = c['high'] - c['low']\n    return total_range > 1.2 * avg_range",
            "total_range",
            "1.2",
            Category.OTHER,
        ),
        Example(
            "from binance.ohlc_buffer import Candle\n\ndef premium(pos):\n"
            "    if pos >= 0.65:\n        return 'PREMIUM'\n    return 'MID'",
            "pos",
            "0.65",
            Category.OTHER,
        ),
        # an expert system's rule: the lambda tests the fact named `adx`
        Example(
            "class TradingExpert(KnowledgeEngine):\n"
            "    @Rule(Indicator(name='adx', value=P(lambda x: x > 25)))\n"
            "    def adx_regime(self):\n        self.declare(Regime('STRONG'))",
            "adx",
            "25",
            Category.OTHER,
        ),
        # a comparison declared as a named fact: the fact's name says what it is
        Example(
            "def entry_signal(engine, width):\n"
            "    engine.declare(Indicator(name='bb_squeeze', value=width < 0.02))",
            "bb_squeeze",
            "0.02",
            Category.OTHER,
        ),
        Example(
            "def generate_signal(fib_pos, rsi):\n    if fib_pos > 0.55 and rsi < 55:\n        return 'LONG'",
            "fib_pos",
            "0.55",
            Category.OTHER,
        ),
        Example(
            "def generate_signal(fib_pos, rsi):\n    if fib_pos > 0.55 and rsi < 55:\n        return 'LONG'",
            "rsi",
            "55",
            Category.OTHER,
        ),
        Example(
            "def tick(client, z):\n    if z > 2.5:\n        client.create_order('BTCUSDT', 'SELL', 1)",
            "z",
            "2.5",
            Category.OTHER,
        ),
    )


class IndicatorPeriod(Rule):
    rule_id = "indicator-period"
    roles = ("indicator-period",)
    title = "Indicator period fixed in trading code"
    why = "{name} is computed over {value} bars in {where}: the signal's lookback is a hardcoded decision"
    VALID = (
        # an overlay drawn on a chart
        "def draw_chart(ax, df):\n    ax.plot(ta.ema(df.close, length=200))",
        "def f(df):\n    return df.close.rolling(20).mean()",  # not an indicator call
    )
    INVALID = (
        Example(
            "class Trader:\n    def stop_distance(self, df):\n"
            "        atr = ta.atr(df.high, df.low, df.close, length=5)\n"
            "        return 0.5 * atr.iloc[-1]",
            "atr",
            "5",
            Category.OTHER,
        ),
        Example(
            "def generate_signal(close):\n    rsi = talib.RSI(close, timeperiod=14)\n"
            "    return rsi[-1] < 30",
            "RSI",
            "14",
            Category.OTHER,
        ),
        # the average every relative-volume threshold of a bot is measured against
        Example(
            "def run_trader(candles):\n    precompute_vol_avg(candles, window=20)\n"
            "    return generate_signal(candles)",
            "precompute_vol_avg",
            "20",
            Category.OTHER,
        ),
    )


class BarOffsetStop(Rule):
    rule_id = "bar-offset"
    roles = ("bar-offset",)
    title = "Stop or target placed at an earlier bar's price"
    why = "{name} is taken from the bar {value} back in {where}: how far back the level sits is a hardcoded decision"
    VALID = (
        # the previous bar in a signal, no stop
        "def entry_signal(df):\n    prev = df.iloc[-2]\n    return prev.close > prev.open",
        # a bar of a list that is not market data
        "def set_stop(levels, i):\n    stop_loss = levels[i - 2]\n    return stop_loss",
    )
    INVALID = (
        Example(
            "def enter(state, candles, idx, price):\n    ref = candles[max(0, idx - 2)]\n"
            "    state.trend_long_stop = min(ref['low'], price * 0.99)",
            "trend_long_stop",
            "2",
            Category.STOP_LOSS_TAKE_PROFIT,
        ),
        Example(
            "def protect(df):\n    stop_price = df['low'].iloc[-3]\n    return stop_price",
            "stop_price",
            "-3",
            Category.STOP_LOSS_TAKE_PROFIT,
        ),
    )


class VoteGate(Rule):
    rule_id = "vote-gate"
    roles = ("vote-gate",)
    title = "Majority vote that gates an entry"
    why = (
        "{name} must reach {value} in {where}: how many signals must agree is a hardcoded decision"
    )
    VALID = ("def f(xs):\n    if len(xs) >= 2:\n        return xs[0]",)
    INVALID = (
        Example(
            "def should_enter(a, b, c):\n    votes = sum([a, b, c])\n    if votes >= 2:\n        return True",
            "votes",
            "2",
            Category.OTHER,
        ),
        Example(
            "def entry_signal(checks):\n    if sum(c.ok for c in checks) >= 2:\n        return 'LONG'",
            "sum",
            "2",
            Category.OTHER,
        ),
    )


class GradeThreshold(Rule):
    rule_id = "grade-threshold"
    roles = ("grade",)
    title = "Lowest grade a signal must reach"
    why = "{name} defaults to grade {value} in {where}: which signals are good enough is a hardcoded decision"
    VALID = (
        'SECTION = os.getenv("REPORT_SECTION", "A")',
        'def tier_label(score):\n    return "A" if score > 1 else "B"',
    )
    INVALID = (
        Example(
            'MIN_TIER_TO_SEND = os.getenv("MIN_TIER_TO_SEND", "A").strip().upper()',
            "MIN_TIER_TO_SEND",
            '"A"',
            Category.OTHER,
        ),
        Example(
            'def should_send(state, tier):\n    min_tier = state.min_tier or "A"\n'
            "    return tier >= min_tier",
            "min_tier",
            '"A"',
            Category.OTHER,
        ),
    )


class GradeCutoff(Rule):
    rule_id = "grade-cutoff"
    roles = ("grade-cutoff",)
    title = "Points a grade or tier takes, written inline"
    why = "{name} is given when the score reaches {value} in {where}: the cut-off between grades is a hardcoded decision"
    VALID = (
        # a status code mapped to a letter: the compared name is plumbing
        'def level(status):\n    return "E" if status >= 500 else "A"',
        # no grade given: a label of a side
        'def side(points):\n    return "LONG" if points >= 5 else "SHORT"',
        # a grade drawn on a chart
        'def draw_grade(ax, points):\n    ax.text(0, 0, "A" if points >= 5 else "B")',
    )
    INVALID = (
        Example(
            'def grade(points):\n    return "A" if points >= 5 else ("B" if points >= 3 else "C")',
            "grade",
            "5",
            Category.OTHER,
        ),
        Example(
            'def grade(points):\n    return "A" if points >= 5 else ("B" if points >= 3 else "C")',
            "grade",
            "3",
            Category.OTHER,
        ),
        Example(
            "def classify(setup):\n    if setup.points >= 8:\n        setup.tier = 1\n"
            "    elif setup.points >= 5:\n        setup.tier = 2\n    return setup",
            "tier",
            "5",
            Category.OTHER,
        ),
        # a tier's cut-off of 100 points is not a percentage
        Example(
            "def tier_from_score(score):\n    if score >= 100:\n        return 'A'\n    return 'B'",
            "tier_from_score",
            "100",
            Category.HARVEST,
        ),
    )


class TallyWeight(Rule):
    rule_id = "tally-weight"
    roles = ("tally-weight",)
    title = "Weight of a vote in a signal tally"
    why = "{name} grows by {value} in {where} when its condition holds: how much one signal counts is a hardcoded decision"
    VALID = (
        # a counter, and an index stepped in a loop
        "def entry_signal(a, b):\n    n = 0\n    if a:\n        n += 1\n    return n >= 2",
        "def walk(xs):\n    i = 0\n    while i < len(xs):\n        if xs[i]:\n            i += 2",
        # an increment nobody compares
        "def entry_signal(a):\n    total = 0\n    if a:\n        total += 5\n    return total",
    )
    INVALID = (
        Example(
            "def entry_signal(trend_up, breakout, min_score):\n    long = 0\n"
            "    if trend_up: long += 2\n    if breakout: long += 2\n"
            "    return long >= min_score",
            "long",
            "2",
            Category.OTHER,
        ),
        Example(
            "def entry_signal(rsi, macd_up):\n    score = 0.0\n    if macd_up:\n"
            "        score += 0.5\n    return 'BUY' if score > rsi else None",
            "score",
            "0.5",
            Category.OTHER,
        ),
    )


class SignalWindow(Rule):
    rule_id = "window"
    roles = ("window", "window-param")
    title = "Lookback window of a signal"
    why = "{name} is taken over a window of bars set by {value} in {where}: the signal's lookback is a hardcoded decision"
    VALID = (
        # the bar at hand and the one before, a page of rows shown, a window nobody reduces
        "def signal(df):\n    return df['close'].iloc[-2:].diff()",
        "def show(df):\n    print(df.tail(20))",
        "def f(items):\n    return max(items[-20:])",
        # a helper's period in a module that is not trading code
        "def smooth(xs, window=5):\n    return sum(xs[-window:]) / window",
        "def zones(segment):\n    return find_swings(segment, left=2, right=2)",
        # a request's page in code that reads an exchange
        "import ccxt\n\ndef load(ex):\n    return ex.fetch_ohlcv('BTC/USDT', limit=150)",
    )
    INVALID = (
        Example(
            "from api_client import BinanceFuturesClient\n\n"
            "def evaluate(macro, price):\n    high52 = float(macro['high'].tail(52).max())\n"
            "    return price > high52",
            "high",
            "52",
            Category.OTHER,
        ),
        Example(
            "def stop_for(entry, atr):\n    swing = float(entry['low'].iloc[-21:-1].min())\n"
            "    return swing - atr",
            "low",
            "-21",
            Category.STOP_LOSS_TAKE_PROFIT,
        ),
        Example(
            "def entry_signal(df):\n    return df['close'].rolling(50).mean().iloc[-1] < df['close'].iloc[-1]",
            "close",
            "50",
            Category.OTHER,
        ),
        # the last bars of an indicator, compared first to last
        Example(
            "def regime(df):\n    obv = df['obv'].tail(5)\n    return obv.iloc[-1] > obv.iloc[0]",
            "obv",
            "5",
            Category.OTHER,
        ),
        # windows of a signal helper in code that reads an exchange's candles
        Example(
            "from binance.ohlc_buffer import Candle\n\n"
            "def detect_sweep(candles, check_last_n=4):\n    return candles[-check_last_n:]",
            "detect_sweep",
            "4",
            Category.OTHER,
        ),
        Example(
            "from binance.ohlc_buffer import Candle\n\n"
            "def zones(segment):\n    return find_swings(segment, left=2, right=2)",
            "left",
            "2",
            Category.OTHER,
        ),
        # the bars before an index (`max(0, i - 5)` opens the slice or the range) and a series
        # sampled in a tenth of its length
        Example(
            "import ccxt\n\ndef swept(highs, i):\n    return highs[i] > max(highs[max(0, i - 5):i])",
            "highs",
            "5",
            Category.OTHER,
        ),
        Example(
            "import ccxt\n\ndef bias(highs):\n    step = max(len(highs) // 10, 2)\n"
            "    swing = highs[::step]\n    return swing[-1] > swing[0]",
            "highs",
            "10",
            Category.OTHER,
        ),
        # an indicator helper's own period (`def rsi(series, period=14)`)
        Example(
            "def rsi(series, period=14):\n    delta = series.diff()\n    return delta.ewm(span=period).mean()",
            "rsi",
            "14",
            Category.OTHER,
        ),
        Example(
            "class Scanner:\n    @staticmethod\n    def _breakout(frame, side, lookback=20):\n"
            "        return frame['close'].iloc[-1] > frame['high'].iloc[-lookback:].max()",
            "_breakout",
            "20",
            Category.OTHER,
        ),
    )


def all_rules() -> list[type[Rule]]:
    """Every rule class in this module, found by walking subclasses (no registry to forget)."""
    found: list[type[Rule]] = []
    pending = list(Rule.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


RULES_BY_ROLE = {role: rule for rule in all_rules() for role in rule.roles}

_ASSIGN_LIKE = {
    "constant", "field-default", "assign-fallback", "or-fallback", "param-default", "env-default",
    "dict-value", "get-default",
}  # fmt: skip
_NAMELESS_FORMS = {"weight", "clamp", "field-default", "field-bound", "fraction"}
_SECRET_ROLES = _ASSIGN_LIKE | {"call-arg", "cli-default"}
_STRING_ROLES = _ASSIGN_LIKE | {"cli-default", "return"}
_SYMBOL_ROLES = _ASSIGN_LIKE | {"call-arg", "return", "comparison"}


def numeric_value(node: cst.CSTNode) -> float | None:
    """The value of a number or all-number arithmetic, without eval; None if not computable."""
    try:
        if isinstance(node, cst.Integer | cst.Float):
            return float(node.evaluated_value)
        if isinstance(node, cst.SimpleString):
            return float(str(node.evaluated_value).strip())
        if isinstance(node, cst.UnaryOperation):
            inner = numeric_value(node.expression)
            if inner is None:
                return None
            return -inner if isinstance(node.operator, cst.Minus) else inner
        if isinstance(node, cst.BinaryOperation):
            a, b = numeric_value(node.left), numeric_value(node.right)
            if a is None or b is None:
                return None
            op = node.operator
            if isinstance(op, cst.Add):
                return a + b
            if isinstance(op, cst.Subtract):
                return a - b
            if isinstance(op, cst.Multiply):
                return a * b
            if isinstance(op, cst.Divide | cst.FloorDivide):
                return a / b if b else None
            if isinstance(op, cst.Power):
                return a**b if abs(b) <= 64 and abs(a) <= 1e6 else None
    except (ValueError, OverflowError, ZeroDivisionError, TypeError):
        return None
    return None


_NAMED_VALUE_ROLES = frozenset({"constant", "assign-fallback", "field-default", "env-default"})
_DEFAULT_ROLES = frozenset({"param-default", "strategy-param", "cli-default"})


_START_WORDS = frozenset({"initial", "starting", "start", "opening", "begin", "beginning"})
_ACCOUNT_WORDS = frozenset({"capital", "balance", "equity", "bankroll", "cash", "funds"})


def _fractional(node: cst.CSTNode) -> bool:
    """A written fraction (`0.35`, `-0.5`), not a count or an epsilon (`1e-4`)."""
    if isinstance(node, cst.UnaryOperation):
        node = node.expression
    if not isinstance(node, cst.Float):
        return False
    value = numeric_value(node)
    return value is not None and value != int(value) and abs(value) >= 0.001


def _starting_amount(names: list[str]) -> bool:
    """A name of the money an account or a simulation starts with (`initial_balance`)."""
    for name in names:
        seq = set(words(name))
        if seq & _START_WORDS and seq & _ACCOUNT_WORDS:
            return True
    return False


def _annualisation(node: cst.CSTNode) -> bool:
    """`252 ** 0.5`, `365 ** 0.5`: the square root of a count of periods per year."""
    if not (isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Power)):
        return False
    return numeric_value(node.left) in _PERIODS_PER_YEAR and numeric_value(node.right) == 0.5


def _label(category: Category) -> str:
    if category is Category.OTHER:
        return "trading"
    return str(category).replace("_", " ").replace("stop loss take profit", "stop-loss/take-profit")


class Judge:
    """Decides whether a literal at a site is a trading decision, and of which kind."""

    def __init__(self, config: AuditConfig, rel_path: str, *, is_test: bool = False) -> None:
        self.config = config
        self.vocabulary = _vocabulary(config)
        self.rel_path = rel_path
        self.is_test = is_test
        stem = PurePosixPath(rel_path)
        self.path_names = [stem.stem, *stem.parent.parts[-3:]]
        self.findings: list[Reported] = []
        # module constants no name here tells about: reported when another module imports one
        # and uses it as a decision (the runner joins them, see audit.imports)
        self.held: list[Reported] = []
        # imported names that speak of trading (`BinanceFuturesClient`): context for the forms
        # told by shape alone (a vote's weight, a market window), whatever the file is called
        self.trading_imports: list[str] = []
        # keys of strategy parameter dicts in this file (`defaults = {"atr_period": 14}`) -> value
        self.param_defaults: dict[str, str] = {}

    # -- entry points from the scanner ------------------------------------------------------
    def number(self, site: Site) -> None:
        if site.role in ("", "index", "conversion"):
            return
        value = numeric_value(site.node)
        if value is None or not math.isfinite(value):
            return
        if self._safety_limit(site, value):
            return
        if any(self.vocabulary.match(k).neutral for k in site.enclosing_keys):
            return  # inside `{"api": {"get": {...}}}`, `{"rateLimits": ...}`: plumbing tables
        if site.role == "comparison" and site.rejects and self._domain_bound(site, value):
            return  # `if self.leverage > 125: return False`: the bound of what can be set
        if site.role == "comparison" and self._vote_gate(site, value):
            return
        if site.role == "comparison" and site.grade and self._grade_cutoff(site, value):
            return
        if (
            value == -1
            and site.role in _FALLBACK_ROLES | {"get-default"}
            and not any(self.vocabulary.match(n).strong for n in site.names if n)
        ):
            return  # `state.get("last_check_hour", -1)`: "never", a sentinel
        if site.role == "bar-offset":  # its flow into the stop was checked where it was found
            self._report(site, Category.STOP_LOSS_TAKE_PROFIT, 0.75, check_flow=False)
            return
        if site.role in _NAMED_VALUE_ROLES | _DEFAULT_ROLES and _starting_amount(site.names):
            return  # `INITIAL_CAPITAL = 1000`: the account a run starts with, a fact of the run
        if site.role == "weight" and _annualisation(site.node):
            return  # `sharpe * 252 ** 0.5`: a unit of a ratio metric, not a weight
        if site.role == "call-arg" and self._indicator_period(site, value):
            return
        if site.role in ("tally-weight", "window"):
            self._by_form(site, value)
            return
        if site.role == "param-default" and (
            self._period_param(site, value)
            or self._indicator_bound(site, value)
            or self._market_tolerance(site, value)
        ):
            return
        tentative = False
        # a comparison of an indicator (`rsi < 55`) is a signal threshold before a generic one;
        # a lookback key of a strategy's parameter dict (`"window": 20`) is one of its parameters
        first_shape = self._names_say_nothing(site) or self._lookback_param(site)
        shaped = self._by_shape(site) if first_shape else None
        verdict = None if shaped else self._classify(site)
        if verdict is None:
            shaped = shaped or self._by_shape(site)
            if shaped is None:
                self._hold(site, value)
                return
            site, verdict, tentative = shaped
        category, confidence, match, name = verdict
        if (
            site.role in _CONTEXT_ONLY_FORMS
            and match.category is None
            and not match.strong
            and not self._trading_context(site)
            and (site.role not in _FALLBACK_ROLES or site.function == "__init__")
        ):
            # `lower = mean - 1.5 * sd` in a statistics helper, `self.ratio = 6751 / 616` set up
            # by a monitor's constructor: kept only if they reach an order or risk call
            tentative = True
        if (
            site.role == "fraction"
            and category is Category.POSITION_SIZING
            and self._context_category(site) is Category.HARVEST
        ):
            category = Category.HARVEST  # `close_qty = pos.qty / 2` in a scale-out: an exit share
        if category is Category.SECRET:
            return  # a number under a credential name (`"apikey": 10` in a rate-limit table)
        if value == 0 or 0 < abs(value) < 1e-6:
            return
        if (site.role in ("weight", "fraction") or site.ratio) and 0 < abs(abs(value) - 1) < 1e-6:
            return  # `qty * (1 - 1e-9)`: a float tolerance around 1, not a decision
        if abs(value) == 1 and (
            not (match.strong or match.generic)
            or site.role in ("comparison", "weight")
            or (match.neutral and not match.generic)  # `state.martingale_level = 1`: a counter
        ):
            return  # 1 and -1 are structure (`x > 1`, `* -1`) unless a decision name holds them
        small_count = value == int(value) and abs(value) <= 3 and isinstance(site.node, cst.Integer)
        if (
            small_count
            and site.role in ("comparison", "signal-threshold")
            and not match.strong
            and not site.ratio  # `capital >= initial * 2` is a multiple, not a count
        ):
            return  # `if xs.size < 2`, `if len(window) >= 3`: sanity checks on counts
        if value in self.vocabulary.conversions and match.category is None:
            seq = words(name)
            if site.role in _NAMED_VALUE_ROLES:  # a duration (`max_wait_seconds = 60`) or a unit
                unit = (
                    not match.generic
                    or bool(set(seq) & _DURATION_WORDS)
                    or (bool(seq) and all(w in _UNIT_NAMES for w in seq))
                )
            else:
                unit = bool(set(seq) & _UNIT_WORDS) or not match.generic
            # `if score >= 100` (a tier's threshold) is compared under a decision word, with no
            # unit word: not the 100 of a percentage
            compared = site.role in ("comparison", "signal-threshold") and not site.ratio
            if unit or (site.role not in _NAMED_VALUE_ROLES | _DEFAULT_ROLES and not compared):
                return  # `PERCENT = 100.0`, `MS_PER_SECOND = 1000`: a unit, named as one
        if self._cost(site, name):
            return  # `TAKER_FEE = 0.0004`, `fee = price * qty * 0.0004`
        extra = ""
        key = site.names[0] if site.names else ""
        if site.role == "get-default" and key in self.param_defaults:
            declared = self.param_defaults[key]
            if numeric_value(cst.parse_expression(declared)) != value:
                extra = f"; it contradicts the declared default {key} = {declared}"
        self._report(site, category, confidence, name=name, tentative=tentative, extra=extra)

    def boolean(self, site: Site, value: bool) -> None:
        """`params.get("use_scale_out", True)`: a decision switch that is on when unset."""
        if site.role != "get-default" or not site.names:
            return
        key = site.names[0]
        if not value and set(words(key)) & _STATE_FLAG_WORDS:
            return  # `entry.get("tp1_placed", False)`: a record of what happened, not yet
        match = self.vocabulary.match(key)
        if match.neutral and not match.strong:
            return
        declared = self.param_defaults.get(key)
        seq = set(words(key))
        receiver = set(words(site.receiver))
        switch = bool(seq & _SWITCH_WORDS) and (
            bool(receiver & _PARAMS_WORDS) or self._trading_context(site)
        )
        if declared is None and match.category is None and not match.indicator and not switch:
            return
        if match.category is Category.SECRET:
            return
        category = match.category or self._context_category(site) or Category.OTHER
        trading = self._trading_context(site) or bool(receiver & _PARAMS_WORDS)
        extra = ""
        if declared is not None and declared != str(value):
            extra = f" (it contradicts the declared default {key} = {declared})"
        site = replace(site, role="bool-switch", value=str(value))
        self._report(site, category, 0.75 if trading else 0.45, name=key, extra=extra)

    def string(self, site: Site, text: str) -> None:
        if site.role in _SECRET_ROLES and self._secret(site, text):
            return
        if site.role not in _STRING_ROLES:
            return
        if self._grade(site, text):
            return
        names = [n for n in site.names + site.secondary if n]
        parts = [part.strip() for part in text.split(",")]
        if parts and all(SYMBOL.match(part) and _QUOTE.search(part) for part in parts):
            named = any(
                self.vocabulary.match(n).category is Category.SYMBOL_SELECTION for n in names
            )
            if named or len(parts) >= 2:
                site = replace(site, role="symbol-string", names=site.names or site.secondary)
                self._report(
                    site, Category.SYMBOL_SELECTION, 0.9 if named else 0.7, count=len(parts)
                )
            return
        if (
            any("strategy" in words(n) and not self.vocabulary.match(n).neutral for n in names)
            and not any(set(words(n)) & _LOCATION_NAMES for n in names)
            and _IDENTIFIER.match(text)
            and not any(c in text for c in "/\\")
            and not text.endswith((".py", ".json", ".toml", ".yaml", ".yml", ".csv"))
        ):
            confidence = 0.75 if self._trading_context(site) or site.role == "cli-default" else 0.45
            self._report(site.with_role("strategy-choice"), Category.OTHER, confidence)

    def _grade(self, site: Site, text: str) -> bool:
        """`os.getenv("MIN_TIER_TO_SEND", "A")`, `state.min_tier or "A"`: a threshold given as
        a grade: the lowest tier, grade or rating a signal must reach."""
        if not _GRADE.match(text):
            return False
        names = [n for n in site.names + site.secondary if n]
        if not any(set(words(n)) & _GRADE_NAMES and set(words(n)) & _BOUND_NAMES for n in names):
            return False
        site = replace(site, role="grade")
        self._report(
            site, Category.OTHER, 0.6, name=next(n for n in names if set(words(n)) & _GRADE_NAMES)
        )
        return True

    def _secret(self, site: Site, text: str) -> bool:
        names = site.names + (site.secondary if site.role in ("env-default", "cli-default") else [])
        if not any(self.vocabulary.match(n).category is Category.SECRET for n in names if n):
            return False
        if not _looks_like_credential(text):
            return False
        # No hash of the secret, keyed or not: the length and the place identify the finding (a
        # baseline stays stable), and nothing derived from the value leaves the source file.
        masked = replace(site, value=f"<redacted {len(text)} chars>")
        self._report(masked.with_role("secret"), Category.SECRET, 0.9, check_flow=False)
        return True

    def symbols(self, site: Site, count: int) -> None:
        if site.role not in _SYMBOL_ROLES:
            return
        names = site.names + site.secondary
        named = any(
            self.vocabulary.match(n).category is Category.SYMBOL_SELECTION for n in names if n
        )
        if count < 2 and not named:
            return
        site = replace(site, role="symbols", names=site.names or site.secondary)
        # qctl: ignore (a finding's confidence, not a trade's)
        self._report(site, Category.SYMBOL_SELECTION, 0.9 if named else 0.7, count=count)

    # -- decisions -------------------------------------------------------------------------
    def _classify(self, site: Site) -> tuple[Category, float, Match, str] | None:
        """(category, confidence, the deciding match, the name that decided) or None.

        The literal's own names decide first (target, keyword, key, env var, compared name); then
        the names around the expression (assignment target, callee); then, for forms that are
        decisions by shape (weights, clamps, model fields) or names that are generic decision words
        (threshold, weight, max...), the enclosing function and class.
        """
        match = self.vocabulary.match
        primary = [(n, match(n)) for n in site.names if n]
        best = _best(primary)
        if best is not None:
            name, m = best
            confidence = 0.9 if m.strong else 0.75 if self._trading_context(site) else 0.45
            return m.category, confidence, m, name  # type: ignore[return-value]
        if any(m.neutral for _, m in primary):
            return None
        secondary = [(n, match(n)) for n in [*site.secondary, site.callee] if n]
        best = _best(secondary)
        if best is not None:
            name, m = best
            confidence = 0.75 if m.strong else 0.6 if self._trading_context(site) else 0.4
            return m.category, confidence, replace(m, strong=False), name  # type: ignore[return-value]
        if any(m.neutral for _, m in secondary):
            return None
        generic = next((m for _, m in primary + secondary if m.generic or m.indicator), None)
        if generic is None and site.role not in _NAMELESS_FORMS:
            return None
        first = (primary + secondary)[0][0] if primary + secondary else ""
        for context in (site.function, site.klass):
            m = match(context) if context else Match()
            if m.category is not None and m.category is not Category.SECRET:
                return m.category, 0.5 if generic else 0.4, generic or Match(), first
        if generic is not None:
            return Category.OTHER, 0.4, generic, first
        return None

    def _by_shape(self, site: Site) -> tuple[Site, tuple[Category, float, Match, str], bool] | None:
        """Decisions told by where the literal sits when no name says so: (site, verdict, tentative).

        A threshold compared in signal code, a default of an exit or risk function, a strategy
        parameter dict, the fallback of a declared strategy parameter. A tentative one is kept only
        if reachability finds its path to an order or risk call.
        """
        match = self.vocabulary.match
        named = [n for n in site.names if n]
        lookback = self._lookback_param(site)
        if not lookback and any(match(n).neutral for n in named):
            return None
        category = self._context_category(site) or Category.OTHER
        trading = self._trading_context(site)
        first = named[0] if named else ""
        if site.role == "comparison" and named:
            if any(match(n).indicator for n in named):
                confidence = 0.75 if trading else 0.45
            elif self.vocabulary.is_signal_context((site.function, site.klass)):
                confidence = 0.6 if trading else 0.45
            elif self.trading_imports and (site.ratio or _fractional(site.node)):
                # in code that reads an exchange's candles (`from binance.ohlc_buffer import
                # Candle`), `x > 1.2 * avg` and `pos <= 0.35` are signal thresholds even when
                # no order is placed here (a signal bot sends them to people); counts (`n < 10`)
                # are still judged by where they lead
                confidence = 0.6
            else:  # only if its `if` gates an order or a risk call (reachability decides)
                return site.with_role("signal-threshold"), (category, 0.6, Match(), first), True
            return site.with_role("signal-threshold"), (category, confidence, Match(), first), False
        if site.role == "get-default" and first in self.param_defaults:
            return site, (category, 0.75, Match(), first), False
        if site.role == "strategy-param":
            return site, (category, 0.75 if trading else 0.5, Match(), first), False
        if site.role == "param-default" and site.function:
            fm = match(site.function)
            if (fm.strong and fm.category not in (None, Category.SECRET)) or (
                set(words(site.function)) & _EXIT_FUNCTION_WORDS
            ):
                return site, (category, 0.6 if trading else 0.45, Match(), first), False
        return None

    def _hold(self, site: Site, value: float) -> None:
        """Keep a module constant that says nothing by its name (`STAIRCASE_LOOKBACK = 5`) aside:
        it is a decision if a module that imports it compares, slices or passes it."""
        if site.role != "constant" or not site.module_level or abs(value) in (0, 1):
            return
        if any(self.vocabulary.match(n).neutral for n in site.names if n):
            return
        self._report(site, Category.OTHER, 0.6, check_flow=False)  # qctl: ignore (a finding's)
        self.held.append(self.findings.pop())

    def _cost(self, site: Site, name: str) -> bool:
        """A fee or slippage (a fact or an assumption), not a limit on one."""
        held = [name, *site.names] if site.role not in ("weight", "fraction") else []
        held += site.secondary if site.role in ("weight", "fraction") else []
        for held_name in (n for n in held if n):
            seq = set(words(held_name))
            if seq & _COST_NAMES and not seq & _BOUND_NAMES:
                return True
        return False

    def _indicator_period(self, site: Site, value: float) -> bool:
        """`ta.atr(h, l, c, length=5)` in trading code: the period of a signal's indicator; also
        the period given to a helper of this module that takes a trailing window with it
        (`def _sma(values, n)` then `_sma(volumes, 10)`), and a lookback keyword passed with
        market data (`highest(highs, lookback=55)`, a helper imported from elsewhere)."""
        short = site.callee.rsplit(".", 1)[-1] if site.callee else ""
        if not short:
            return False
        key = site.names[0] if site.names else ""
        helper = bool(key) and (site.helper_window or self._lookback_keyword(site, key))
        if not (
            helper
            or self.vocabulary.match(short).indicator
            or set(words(short)) & _AVERAGE_CALL_WORDS
        ):
            # `find_swings(segment, left=2, right=2)`, `detect_sweep(c, check_last_n=4)` in code
            # that reads an exchange's candles: the window a signal helper is given
            key = site.names[0] if site.names else ""
            seq = set(words(key))
            if not (self.trading_imports and seq and seq <= _PERIOD_KEYS | _WINDOW_PARAM_NAMES):
                return False
            if value != int(value) or not 2 <= value <= 1000:
                return False
            if self.vocabulary.match(short).neutral:
                return False
            self._report(
                replace(site.with_role("window-param"), names=[key]),
                Category.OTHER,
                0.45,
                name=key,
                check_flow=False,
            )
            return True
        if key and not helper and not set(words(key)) & _PERIOD_KEYS:
            return False
        if value != int(value) or not 2 <= value <= 1000:
            return False
        around = (site.function, site.klass, *self.path_names)
        if any(set(words(n)) & _DRAWING_NAMES for n in around if n):
            return True  # an overlay: not a decision, and not one for the other rules either
        if not (
            self._trading_context(site)
            or self.vocabulary.is_signal_context(around)
            or self.trading_imports
        ):
            return False
        site = replace(site.with_role("indicator-period"), names=[short])
        # the period shapes the helper's result: the flow search follows the result (inside the
        # helper the period is only a slice bound, which it counts as plumbing)
        self._report(site, Category.OTHER, 0.45, name=short, flow_from=site.call)
        return True

    def _lookback_keyword(self, site: Site, key: str) -> bool:
        """`highest(highs, lookback=55)`, `avg_range(candles, window_bars=14)`: a keyword that
        says lookback, passed with market data as the first argument (an id's `length=16` is no
        lookback)."""
        seq = set(words(key))
        if not seq or not seq <= _LOOKBACK_KEYWORD_PARTS or not seq & _LOOKBACK_KEYS | {"bars"}:
            return False
        call = site.call
        if not isinstance(call, cst.Call) or not call.args or call.args[0].keyword is not None:
            return False
        first = call.args[0].value
        name = _short(_dotted_name(first))
        return bool(name) and bool(set(words(name)) & _MARKET_SERIES)

    def _by_form(self, site: Site, value: float) -> None:
        """A vote's weight (`long += 2`) or a market window (`highs.tail(52).max()`)."""
        if value == 0 or abs(value) == 1 or value in self.vocabulary.conversions:
            return
        if any(
            self.vocabulary.match(n).neutral
            and not (site.role == "window" and set(words(n)) & _MARKET_SERIES)
            for n in site.names
            if n
        ):
            return  # `candles` (neutral as a count of klines) is the market series of a window
        around = (site.function, site.klass, *self.path_names)
        if any(set(words(n)) & _DRAWING_NAMES for n in around if n):
            return  # an overlay on a chart
        signal = (
            self._trading_context(site)
            or self.vocabulary.is_signal_context(around)
            or bool(self.trading_imports)
        )
        indicator = any(self.vocabulary.match(n).indicator for n in site.names if n)
        if not signal and not (site.role == "window" and indicator):
            return  # `df.close.rolling(20).mean()` in a statistics helper
        category = self._context_category(site) or Category.OTHER
        # a window is an index to the flow search: the market series it reduces is the evidence
        self._report(site, category, 0.6 if signal else 0.45, check_flow=site.role != "window")

    def _grade_cutoff(self, site: Site, value: float) -> bool:
        """`grade = "A" if points >= 5 else ("B" if points >= 3 else "C")`, an `if score >= 80:
        return "A"` ladder: the points a grade takes, when no name around says more."""
        names = [n for n in site.names if n]
        matches = [self.vocabulary.match(n) for n in names]
        if not names or any(m.category is not None for m in matches):
            return False  # judged by its name, as before (`if lev > 10: tier = 1`)
        if any(m.neutral for m in matches) or abs(value) in (0, 1):
            return True  # `status >= 500`, `points >= 1`: plumbing or structure, no cut-off
        if not any(set(words(n)) & _GRADE_CUTOFF_WORDS for n in [*names, site.grade]):
            return False  # `"A" if p >= 5`: nothing says a score is graded
        around = (site.function, site.klass, *self.path_names)
        if any(set(words(n)) & _DRAWING_NAMES for n in around if n):
            return True
        category = self._context_category(site) or Category.OTHER
        self._report(site.with_role("grade-cutoff"), category, 0.6, name=site.grade)
        return True

    def _domain_bound(self, site: Site, value: float) -> bool:
        """A validation that refuses a setting outside what can be set at all: a percentage
        above 100, a leverage below 1 or above 125 (the most any venue sells). A tighter bound
        (`if leverage > 20: raise`) is a decision and still reported."""
        for name in (n for n in site.names if n):
            seq = set(words(name))
            if seq & _PERCENT_WORDS and value in (0, 100):
                return True
            if self.vocabulary.match(name).category is Category.LEVERAGE and value in (1, 125):
                return True
        return False

    def _market_tolerance(self, site: Site, value: float) -> bool:
        """`def detect_liquidity_zones(candles, lookback=40, tolerance_pct=0.001)`: a relative
        tolerance given to a helper that reads market data (what counts as equal highs), even
        under a word plumbing uses too. A float epsilon (`eps=1e-9`) is no such tolerance."""
        if not site.names or not site.params or not _fractional(site.node) or abs(value) >= 1:
            return False
        seq = set(words(site.names[0]))
        if not seq & _RELATIVE_WORDS or seq & _COST_NAMES:
            return False
        if not any(set(words(p)) & _MARKET_SERIES for p in site.params if p != site.names[0]):
            return False
        around = (site.function, site.klass, *self.path_names)
        if any(set(words(n)) & _DRAWING_NAMES for n in around if n):
            return False
        if not (self.trading_imports or self._trading_context(site)):
            return False
        self._report(site, Category.OTHER, 0.6, name=site.names[0], check_flow=False)
        return True

    def _indicator_bound(self, site: Site, value: float) -> bool:
        """`def detect_fvg_around(candles, i, max_width_pct=0.008)`: a bound an indicator's own
        helper puts on what it detects, even under a word that is plumbing elsewhere (`width`)."""
        if not site.function or not site.names or not value:
            return False
        if not self.vocabulary.match(site.function).indicator:
            return False
        seq = set(words(site.names[0]))
        if not seq & _BOUND_NAMES or self.vocabulary.match(site.names[0]).category:
            return False  # a name with a category is judged by it, as before
        around = (site.function, site.klass, *self.path_names)
        if any(set(words(n)) & _DRAWING_NAMES for n in around if n):
            return False
        self._report(site, Category.OTHER, 0.6, name=site.names[0])
        return True

    def _period_param(self, site: Site, value: float) -> bool:
        """`def rsi(series, period=14)`: the period of an indicator helper, by its own name."""
        if not site.function or not site.names or value != int(value) or not 2 <= value <= 1000:
            return False
        seq = set(words(site.names[0]))
        if not seq or not seq <= _PERIOD_KEYS | _WINDOW_PARAM_NAMES:
            return False
        function = self.vocabulary.match(site.function)
        if function.neutral:
            return False
        if not function.indicator and not (
            # a helper of code that reads an exchange's candles (`def detect_sweep(candles,
            # check_last_n=4)`), or a moving average in trading code
            self.trading_imports
            or (set(words(site.function)) & _AVERAGE_CALL_WORDS and self._trading_context(site))
        ):
            return False
        around = (site.function, site.klass, *self.path_names)
        if any(set(words(n)) & _DRAWING_NAMES for n in around if n):
            return True  # an overlay's period: not a decision
        # a period reaches only spans and slices, which the flow search counts as plumbing
        self._report(
            site.with_role("window-param"),
            Category.OTHER,
            0.45,
            name=site.function,
            check_flow=False,
        )
        return True

    def _lookback_param(self, site: Site) -> bool:
        """`"window": 20` in a strategy's parameter dict: neutral only by a lookback word."""
        if site.role != "strategy-param" or not site.names or not site.names[0]:
            return False
        seq = words(site.names[0])
        if not set(seq) & _LOOKBACK_KEYS:
            return False
        return not any(self.vocabulary.match(w).neutral for w in seq if w not in _LOOKBACK_KEYS)

    def _names_say_nothing(self, site: Site) -> bool:
        """A comparison whose names carry no category or decision word (maybe an indicator)."""
        if site.role != "comparison":
            return False
        matches = [self.vocabulary.match(n) for n in site.names if n]
        return not any(m.category or m.generic or m.neutral for m in matches)

    def _vote_gate(self, site: Site, value: float) -> bool:
        """`if votes >= 2`, `if sum(conds) >= 2`: how many signals must agree before an entry."""
        if value != int(value) or not 2 <= value <= 9:
            return False
        if not (site.vote or any(self.vocabulary.is_vote(n) for n in site.names if n)):
            return False
        signal = self.vocabulary.is_signal_context((site.function, site.klass))
        if not (signal or self._trading_context(site)):
            return False
        category = self._context_category(site) or Category.OTHER
        name = next((n for n in site.names if n), "votes")
        self._report(site.with_role("vote-gate"), category, 0.75, name=name)
        return True

    def _context_category(self, site: Site) -> Category | None:
        for context in (site.function, site.klass):
            m = self.vocabulary.match(context) if context else Match()
            if m.category is not None and m.category is not Category.SECRET:
                return m.category
        return None

    def trading_file(self) -> bool:
        """Whether the file's name or folders speak of trading (`bot/`, `strategy.py`)."""
        return self.vocabulary.is_trading_context(self.path_names)

    def _trading_context(self, site: Site) -> bool:
        return self.vocabulary.is_trading_context((site.function, site.klass, *self.path_names))

    def _safety_limit(self, site: Site, value: float) -> bool:
        if site.role not in (
            "constant",
            "field-default",
            "env-default",
            "assign-fallback",
            "return",
        ):
            return False
        names = [n for n in site.names + site.secondary if n]
        declared = next(
            (n for n in names if self.config.is_safety_limit(n.rsplit(".", 1)[-1], site.klass)),
            None,
        )
        if declared is None:
            return False
        verdict, looser = self._check_limit(declared, value)
        site = replace(site, role="safety-limit", names=[declared])
        severity = Severity.ERROR if looser else None
        self._report(
            site, Category.SAFETY_LIMIT, 0.9, severity=severity, verdict=verdict, check_flow=False
        )
        return True

    def _check_limit(self, name: str, value: float) -> tuple[str, bool]:
        """Compare a declared limit with the owner's (given by the caller as reference limits)."""
        seq = words(name)
        percent = any(w in seq for w in ("pct", "percent", "percentage"))
        for kind, (bound, direction, is_percent) in self.config.reference_limits.items():
            if not _limit_kind_matches(kind, seq):
                continue
            shown = value
            if (
                is_percent
                and not percent
                and abs(value) <= (bound / 100 * 4 if direction == "max" else 1)
            ):
                shown = value * 100  # a fraction: 0.5 means 50 %
            unit = " %" if is_percent else "x"
            if direction == "max" and shown > bound:
                return (
                    f"looser than the owner's hard limit (at most {bound:g}{unit}): an error",
                    True,
                )
            if direction == "min" and shown < bound:
                return (
                    f"looser than the owner's hard limit (at least {bound:g}{unit}): an error",
                    True,
                )
            return (
                f"within the owner's hard limit ({'≤' if direction == 'max' else '≥'} {bound:g}{unit})",
                False,
            )
        return "not one of the owner's four hard limits; kept as declared", False

    def _report(
        self,
        site: Site,
        category: Category,
        confidence: float,
        *,
        severity: Severity | None = None,
        count: int = 0,
        verdict: str = "",
        name: str = "",
        tentative: bool = False,
        check_flow: bool = True,
        extra: str = "",
        flow_from: cst.CSTNode | None = None,
    ) -> None:
        rule = RULES_BY_ROLE[site.role]
        fallback = (
            site.names[0]
            if site.names
            else site.callee or (site.secondary[0] if site.secondary else "")
        )
        name = _short(name or fallback)
        if severity is None:
            severity = self.config.severities.get(category, Severity.WARNING)
            if confidence < 0.5 and severity.at_least(Severity.WARNING):
                severity = Severity.INFO
        where = (
            site.scope
            if site.scope != "<module>"
            else f"module {PurePosixPath(self.rel_path).stem}"
        )
        message = rule.why.format(
            name=name or "a value",
            value=site.value,
            where=where,
            category=_label(category),
            count=count,
            verdict=verdict,
            extra=extra if "{extra}" in rule.why else "",
        )
        if extra and "{extra}" not in rule.why:
            message += extra
        finding = Finding(
            path=self.rel_path,
            line=0,  # positions are filled in after the traversal, for files with findings only
            column=0,
            rule_id=rule.rule_id,
            category=category,
            severity=severity,
            confidence=round(confidence, 2),
            scope=site.scope,
            name=name,
            value=site.value,
            message=message,
            is_test=self.is_test,
        )
        self.findings.append(
            Reported(
                finding,
                site.node,
                site.statement,
                tentative=tentative,
                check_flow=check_flow,
                flow_from=flow_from,
            )
        )


def _looks_like_credential(text: str) -> bool:
    """Random-looking text: long enough, letters and digits, no spaces, not a placeholder or an
    env var name (`"credential"` as a label or `"BINANCE_API_KEY"` as a reference are not secrets)."""
    text = text.strip()
    if len(text) < 12 or any(c.isspace() for c in text) or _PLACEHOLDER.match(text):
        return False
    digits = sum(c.isdigit() for c in text)
    if _ENV_NAME.match(text) and digits / len(text) < 0.2:
        return False  # `BINANCE_API_KEY`: the name of a variable, not its value
    if len(text) < 32 and all(_wordlike(part) for part in re.split(r"[-_.:]+", text) if part):
        return False  # `qctl-sim-key`, `paper-trading`: readable words, a label or a fake
    classes = sum(
        (
            any(c.islower() for c in text),
            any(c.isupper() for c in text),
            digits > 0,
            any(not c.isalnum() for c in text),
        )
    )
    entropy = _entropy(text)
    return (classes >= 2 and entropy >= 3.0) or (len(text) >= 32 and entropy >= 3.5)


def _wordlike(part: str) -> bool:
    """A word as people write it: letters only, lower-case, Capitalised or a short upper acronym."""
    if not part.isalpha():
        return False
    return (
        part.islower()
        or (part[0].isupper() and part[1:].islower())
        or (part.isupper() and len(part) <= 5)
    )


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character: random keys score near 4-6, words near 2-3."""
    counts: dict[str, int] = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    n = len(text)
    return -sum(k / n * math.log2(k / n) for k in counts.values())


def _best(matches: list[tuple[str, Match]]) -> tuple[str, Match] | None:
    with_cat = [(n, m) for n, m in matches if m.category is not None]
    if not with_cat:
        return None
    return max(with_cat, key=lambda nm: (nm[1].strong, nm[1].weight))


def _dotted_name(node: cst.CSTNode) -> str:
    """`a.b` of a name or attribute, the key of `x["key"]`; '' otherwise."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else node.attr.value
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        inner = node.slice[0].slice
        if isinstance(inner, cst.Index) and isinstance(inner.value, cst.SimpleString):
            text = inner.value.value.strip("\"'")
            return text or _dotted_name(node.value)
        return _dotted_name(node.value)
    return ""


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1] if name else ""


def _limit_kind_matches(kind: str, seq: tuple[str, ...]) -> bool:
    needed = {
        "min_margin_ratio_pct": (("margin",),),
        "max_leverage": (("leverage",), ("lev",)),
        "max_position_size_pct": (("position",),),
        "max_total_exposure_pct": (("exposure",),),
    }.get(kind, (tuple(kind.split("_")),))
    return any(all(w in seq for w in option) for option in needed)


_VOCAB_CACHE: dict[str, Vocabulary] = {}


def _vocabulary(config: AuditConfig) -> Vocabulary:
    key = repr(sorted(config.vocabulary.items()))
    if key not in _VOCAB_CACHE:
        _VOCAB_CACHE[key] = Vocabulary.load(config.vocabulary)
    return _VOCAB_CACHE[key]


def iter_examples() -> Iterator[tuple[type[Rule], str, Example | None]]:
    """(rule, code, expected) for every example of every rule: the shared test harness uses this."""
    for rule in all_rules():
        for code in rule.VALID:
            yield rule, code, None
        for example in rule.INVALID:
            yield rule, example.code, example
