"""One focused test per form the auditor must find and per thing it must leave alone."""

from __future__ import annotations

import pytest

from audit.finding import Category, Severity
from tests.audit.helpers import names, scan

FORMS = [
    ("module constant", "MAX_SYMBOLS = 10", ("MAX_SYMBOLS", "10", "symbol_selection")),
    (
        "class constant",
        "class Gov:\n    MAX_NOTIONAL_PER_TRADE_USDT = 200",
        ("MAX_NOTIONAL_PER_TRADE_USDT", "200", "position_sizing"),
    ),
    (
        "env default string",
        'import os\nX = float(os.getenv("GOV_MAX_NOTIONAL_PER_TRADE_USDT", "200"))',
        ("GOV_MAX_NOTIONAL_PER_TRADE_USDT", '"200"', "position_sizing"),
    ),
    (
        "os.environ.get default",
        'import os\nK = float(os.environ.get("K_CLOSE_THRESHOLD", 0.65))',
        ("K_CLOSE_THRESHOLD", "0.65", "kill_score"),
    ),
    (
        "settings field env default",
        'class Settings(BaseSettings):\n    MAX_LEVERAGE: int = int(os.getenv("MAX_LEVERAGE", "10"))',
        ("MAX_LEVERAGE", '"10"', "leverage"),
    ),
    (
        "dataclass default",
        "@dataclass\nclass HarvestTheta:\n    T2_R: float = 4.0",
        ("T2_R", "4.0", "harvest"),
    ),
    (
        "pydantic Field default",
        "class P(BaseModel):\n    lock_R: float = Field(1.5, ge=0.5, le=10)",
        ("lock_R", "1.5", "harvest"),
    ),
    (
        "pydantic Field bound",
        "class P(BaseModel):\n    lock_R: float = Field(1.5, ge=0.5, le=10)",
        ("lock_R", "10", "harvest"),
    ),
    ("local fallback", "def f():\n    leverage = 10.0", ("leverage", "10.0", "leverage")),
    (
        "is None fallback",
        "def f(leverage):\n    if leverage is None:\n        leverage = 10\n",
        ("leverage", "10", "leverage"),
    ),
    (
        "or fallback",
        "def f(leverage):\n    leverage = leverage or 10",
        ("leverage", "10", "leverage"),
    ),
    (
        "dict.get default",
        'def f(params):\n    return params.get("T1_R", 2.0)',
        ("T1_R", "2.0", "harvest"),
    ),
    (
        "getattr default",
        'def f(cfg):\n    return getattr(cfg, "kill_threshold", 0.6)',
        ("kill_threshold", "0.6", "kill_score"),
    ),
    (
        "parameter default",
        "def open_position(symbol, size_usd=200.0):\n    ...",
        ("size_usd", "200.0", "position_sizing"),
    ),
    ("keyword argument", "theta = HarvestTheta(T3_R=6.0)", ("T3_R", "6.0", "harvest")),
    ("positional argument", "client.set_leverage(10)", ("set_leverage", "10", "leverage")),
    ("dict value", 'ORDER = {"sl_pct": 2.5}', ("sl_pct", "2.5", "stop_loss_take_profit")),
    (
        "comparison",
        "def f(kill_score):\n    if kill_score >= 0.65:\n        return 1",
        ("kill_score", "0.65", "kill_score"),
    ),
    (
        "reversed comparison",
        "def f(lev):\n    if 25 < lev:\n        pass",
        ("lev", "25", "leverage"),
    ),
    (
        "weight",
        "s = 0.3 * volatility_score + 0.4 * trend_score + 0.3 * probability_score",
        ("probability_score", "0.3", "symbol_selection"),
    ),
    (
        "clamp bound",
        "def f(x):\n    size_mult = min(max(x, 0.5), 1.5)\n    return size_mult",
        ("size_mult", "1.5", "position_sizing"),
    ),
    ("np.clip bound", "lev = np.clip(raw, 1, 20)", ("lev", "20", "leverage")),
    (
        "return in decision function",
        "def choose_leverage(sig):\n    return 5.0",
        ("choose_leverage", "5.0", "leverage"),
    ),
    (
        "symbol list",
        'CORE_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]',
        ("CORE_SYMBOLS", '["BTCUSDT", "ETHUSDT", "BNBUSDT"]', "symbol_selection"),
    ),
    (
        "symbol set",
        'EXCLUDED = {"LUNA/USDT", "FTT/USDT"}',
        ("EXCLUDED", '{"LUNA/USDT", "FTT/USDT"}', "symbol_selection"),
    ),
    ("negative literal", "MIN_TREND_SCORE = -0.2", ("MIN_TREND_SCORE", "-0.2", "symbol_selection")),
    (
        "time value that is a decision",
        "@dataclass\nclass HarvestTheta:\n    max_hold_sec: int = 3600",
        ("max_hold_sec", "3600", "harvest"),
    ),
    (
        "age on a harvest theta",
        "@dataclass\nclass HarvestTheta:\n    max_age_sec: float = 86400.0",
        ("max_age_sec", "86400.0", "harvest"),
    ),
    (
        "stop distance",
        "def f(entry):\n    stop_price = entry * (1 - 0.025)\n    return stop_price",
        ("stop_price", "(1 - 0.025)", "stop_loss_take_profit"),
    ),
    (
        "leverage tier threshold",
        "def tier(lev):\n    if lev <= 10:\n        return 1",
        ("lev", "10", "leverage"),
    ),
]


@pytest.mark.parametrize(
    ("code", "expected"), [(c, e) for _, c, e in FORMS], ids=[n for n, _, _ in FORMS]
)
def test_form_is_found(code: str, expected: tuple[str, str, str]) -> None:
    assert expected in names(scan(code))


NON_DECISIONS = [
    ("percent conversion", "def f(x):\n    return x / 100"),
    ("bps conversion", "def f(r):\n    bps = r * 10000\n    return bps"),
    ("ms conversion", "def f(ts):\n    return ts / 1000"),
    ("hours to seconds", "def f(h):\n    secs = h * 3600\n    return secs"),
    ("days to seconds", "def f(d):\n    return d * 86400"),
    ("midpoint", "def f(high, low):\n    mid = (high + low) / 2\n    return mid"),
    ("port", "PORT = 8080\nREDIS_PORT = 6379"),
    ("ttl", "CACHE_TTL_SEC = 300"),
    ("timeout", "def f():\n    return requests.get(url, timeout=10)"),
    ("retry count", "MAX_RETRIES = 3\nRETRY_BACKOFF_SEC = 2.0"),
    ("batch size", "BATCH_SIZE = 500"),
    ("index and slice", "def f(xs):\n    return xs[0] + xs[-1] + sum(xs[:20])"),
    ("range bound", "def f():\n    for i in range(5):\n        pass"),
    ("epsilon", "EPS = 1e-9\ndef f(x):\n    return x + 1e-12"),
    ("version string", '__version__ = "1.4.2"\nVERSION = "2.0"'),
    ("log text", 'log.info("leverage set to 10x for %s", symbol)'),
    ("message text", 'raise ValueError("kill score must be below 0.65")'),
    ("rounding", "def f(x):\n    return round(x, 2)"),
    ("sleep", "time.sleep(1)"),
    (
        "main block",
        'if __name__ == "__main__":\n    leverage = 10\n    run(leverage=20, size_usd=200)',
    ),
    ("zero and one", "def f(leverage):\n    count = 0\n    if leverage > 1:\n        count += 1"),
    ("plain data", "COLUMNS = ['open', 'high', 'low', 'close']\nN = 7"),
    ("exponent", "def f(x):\n    return x ** 2"),
    ("modulo", "def f(i):\n    return i % 7 == 3"),
]


@pytest.mark.parametrize("code", [c for _, c in NON_DECISIONS], ids=[n for n, _ in NON_DECISIONS])
def test_non_decision_is_left_alone(code: str) -> None:
    assert scan(code) == []


def test_secret_is_redacted_and_an_error() -> None:
    [finding] = scan('API_SECRET = "Zq81nVb7Kd02LmPqX"')
    assert finding.category is Category.SECRET
    assert finding.severity is Severity.ERROR
    assert "Zq81" not in finding.value and "redacted" in finding.value
    assert "Zq81" not in finding.message


def test_secret_from_environment_is_fine() -> None:
    assert (
        scan('import os\nAPI_KEY = os.getenv("BINANCE_API_KEY")\nAPI_KEY_ENV = "BINANCE_API_KEY"')
        == []
    )


def test_safety_limit_within_owner_limits_is_info() -> None:
    [finding] = scan("MAX_LEVERAGE_HARD_CAP = 125")
    assert finding.category is Category.SAFETY_LIMIT
    assert finding.severity is Severity.INFO


@pytest.mark.parametrize(
    "code",
    [
        "MAX_TOTAL_EXPOSURE_PCT = 300",
        "MIN_MARGIN_RATIO_PCT = 5",
        "MAX_LEVERAGE_HARD_CAP = 150",
        "MAX_POSITION_SIZE_PCT = 80",
        "MIN_MARGIN_RATIO = 0.05",  # a fraction: 5 %
    ],
)
def test_safety_limit_looser_than_owner_is_error(code: str) -> None:
    [finding] = scan(code)
    assert finding.category is Category.SAFETY_LIMIT
    assert finding.severity is Severity.ERROR
    assert "looser" in finding.message


def test_safety_limit_names_come_from_config() -> None:
    code = "RISK_CEILING_LEVERAGE = 200"
    assert scan(code)[0].category is Category.LEVERAGE
    [finding] = scan(code, safety_limit_names=("RISK_CEILING_*",))
    assert finding.category is Category.SAFETY_LIMIT and finding.severity is Severity.ERROR


def test_scope_is_qualified() -> None:
    code = "class AIEngineService:\n    def process_signal(self):\n        leverage = 10.0\n"
    [finding] = scan(code)
    assert finding.scope == "AIEngineService.process_signal"
    assert finding.line == 3 and finding.column == 19


def test_each_finding_says_why_with_value_and_place() -> None:
    [finding] = scan("def f():\n    leverage = 10.0")
    assert "10.0" in finding.message and "f" in finding.message
    assert 0 < finding.confidence <= 1


def test_vocabulary_is_extendable_from_config() -> None:
    code = "WOBBLE_GUARD = 0.7"
    assert scan(code) == []
    extended = scan(code, vocabulary={"kill_score": {"strong": ["wobble_guard"]}})
    assert [(f.name, f.category) for f in extended] == [("WOBBLE_GUARD", Category.KILL_SCORE)]


def test_generic_decision_word_takes_category_from_context() -> None:
    code = "class HarvestKernel:\n    def step(self):\n        threshold = 0.42\n"
    [finding] = scan(code)
    assert finding.category is Category.HARVEST
    assert finding.confidence < 0.9


def test_low_confidence_findings_are_info() -> None:
    [finding] = scan("def helper():\n    threshold = 0.42\n")
    assert finding.category is Category.OTHER
    assert finding.severity is Severity.INFO


def test_literal_arithmetic_is_one_value() -> None:
    [finding] = scan("@dataclass\nclass HarvestTheta:\n    max_hold_sec: int = 6 * 3600")
    assert finding.value == "6 * 3600"


def test_labels_and_names_are_not_secrets() -> None:
    code = (
        'LABELS = {Category.SECRET: "credential"}\n'
        '_SECRET_ROLES = BASE | {"call-arg"}\n'
        'API_KEY_ENV = "BINANCE_API_KEY"\n'
        'password = "changeme"\n'
    )
    assert scan(code) == []


def test_non_finite_literals_do_not_crash() -> None:
    assert scan("LEVERAGE_CAP = 1e400\nX = -1e999\n") == []


def test_exchange_api_tables_are_plumbing() -> None:
    """ccxt-style describe() tables: endpoint paths and rate-limit costs are not decisions."""
    code = (
        "def describe():\n"
        "    return {\n"
        "        'api': {'sapi': {'get': {'margin/leverageBracket': 0.1, 'leverageBracket': 1,\n"
        "                                 'users/subaccount/apikey': 10}}},\n"
        "        'fees': {'trading': {'taker': 0.0004}},\n"
        "    }\n"
    )
    assert scan(code) == []
    # the same values outside such a table are decisions
    assert [f.name for f in scan("LIMITS = {'leverageBracket': 20}")] == ["leverageBracket"]


def test_a_number_is_never_a_secret() -> None:
    assert all(
        f.category.value != "secret" for f in scan('LIMITS = {"apikey": 10, "api_secret": 5}')
    )


def test_index_prefixed_names_are_positions_not_decisions() -> None:
    assert scan("def f(row):\n    i_volume = 5\n    return row[i_volume]") == []
