"""The audit rules: one small class per syntactic form, each with its own examples.

A rule names a form (where a literal sits: module constant, `.get` default, comparison operand...)
and explains why it matters. Which literal is a trading decision is decided once, by `Judge`, from
the vocabulary of the names around it. Every rule carries `INVALID` snippets (with the finding
they must produce) and `VALID` snippets (that must produce nothing); one shared test turns each
example of each rule into a test case, so adding a rule adds its tests.
"""

from __future__ import annotations

import hashlib
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
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")


@dataclass(frozen=True, slots=True)
class Reported:
    """A finding before positions are known, with the nodes that will give them."""

    finding: Finding
    node: cst.CSTNode
    statement: cst.CSTNode | None


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
    VALID = ("PORT = 8080", "CACHE_TTL_SEC = 300", "MAX_RETRIES = 3", "VERSION = 2", "EPS = 1e-9")
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
    VALID = ("def f():\n    retries = 3\n    count = 0\n    timeout = timeout or 30",)
    INVALID = (
        Example("def f(self):\n    leverage = 10.0", "leverage", "10.0", Category.LEVERAGE),
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
    )


class GetDefault(Rule):
    rule_id = "get-default"
    roles = ("get-default",)
    title = "Trading value as a .get() or getattr() default"
    why = "{name} falls back to {value} when missing ({where}): the migration must fail closed instead"
    VALID = ('t = cfg.get("timeout", 30)', 'n = getattr(o, "retries", 3)')
    INVALID = (
        Example('t1 = params.get("T1_R", 2.0)', "T1_R", "2.0", Category.HARVEST),
        Example('lock = getattr(cfg, "lock_R", 1.5)', "lock_R", "1.5", Category.HARVEST),
    )


class ParamDefault(Rule):
    rule_id = "param-default"
    roles = ("param-default",)
    title = "Trading value as a function parameter default"
    why = "{name}={value} is a default argument of {where}: callers that omit it trade on a hardcoded {category}"
    VALID = ("def connect(host, port=6379, timeout=5.0): ...",)
    INVALID = (
        Example(
            "def open_position(symbol, leverage=10, size_usd=200.0): ...",
            "leverage",
            "10",
            Category.LEVERAGE,
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
        'log.info("lev %s", 10)',
        "requests.get(u, timeout=10)",
    )
    INVALID = (
        Example("theta = HarvestTheta(T1_R=2.0)", "T1_R", "2.0", Category.HARVEST),
        Example("client.set_leverage(10)", "set_leverage", "10", Category.LEVERAGE),
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
    VALID = ("if retries >= 3: pass", "if len(xs) > 0: pass", "if resp.status_code == 200: pass")
    INVALID = (
        Example("if kill_score >= 0.65:\n    close()", "kill_score", "0.65", Category.KILL_SCORE),
        Example("if lev <= 10:\n    tier = 1", "lev", "10", Category.LEVERAGE),
    )


class ArithmeticWeight(Rule):
    rule_id = "weight"
    roles = ("weight",)
    title = "Trading weight or factor in arithmetic"
    why = "{value} scales {name} in {where}: a hardcoded {category} weight"
    VALID = (
        "pct = x / 100",
        "bps = r * 10000",
        "ms = s * 1000",
        "mid = (high + low) / 2",
        "h = sec / 3600",
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
    VALID = ("n = max(1, workers)", "i = min(idx, len(xs) - 1)")
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
    VALID = ('COLUMNS = ["open", "high", "low", "close"]',)
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
        'password = ""',
    )
    INVALID = (
        Example('API_KEY = "a8Fk29dLqPz01mX7"', "API_KEY", "", Category.SECRET),
        Example(
            'client = Client(api_secret="Zq81nVb7Kd02LmPq")', "api_secret", "", Category.SECRET
        ),
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
_NAMELESS_FORMS = {"weight", "clamp", "field-default", "field-bound"}
_SECRET_ROLES = _ASSIGN_LIKE | {"call-arg"}
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


def _label(category: Category) -> str:
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
        verdict = self._classify(site)
        if verdict is None:
            return
        category, confidence, match, name = verdict
        if category is Category.SECRET:
            return  # a number under a credential name (`"apikey": 10` in a rate-limit table)
        if value == 0 or 0 < abs(value) < 1e-6:
            return
        if abs(value) == 1 and (
            not (match.strong or match.generic) or site.role in ("comparison", "weight")
        ):
            return  # 1 and -1 are structure (`x > 1`, `* -1`) unless a decision name holds them
        small_count = value == int(value) and abs(value) <= 3 and isinstance(site.node, cst.Integer)
        if small_count and site.role == "comparison" and not match.strong:
            return  # `if xs.size < 2`, `if len(window) >= 3`: sanity checks on counts
        if value in self.vocabulary.conversions and match.category is None:
            return  # `PERCENT = 100.0`, `MS_PER_SECOND = 1000`: a unit, named as one
        self._report(site, category, confidence, name=name)

    def string(self, site: Site, text: str) -> None:
        if site.role not in _SECRET_ROLES:
            return
        names = site.names + (site.secondary if site.role == "env-default" else [])
        if not any(self.vocabulary.match(n).category is Category.SECRET for n in names if n):
            return
        if not _looks_like_credential(text):
            return
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        masked = replace(site, value=f"<redacted {len(text)} chars sha256:{digest}>")
        self._report(masked.with_role("secret"), Category.SECRET, 0.9)

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
        generic = next((m for _, m in primary + secondary if m.generic), None)
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
        self._report(site, Category.SAFETY_LIMIT, 0.9, severity=severity, verdict=verdict)
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
        )
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
        self.findings.append(Reported(finding, site.node, site.statement))


def _looks_like_credential(text: str) -> bool:
    """Random-looking text: long enough, letters and digits, no spaces, not a placeholder or an
    env var name (`"credential"` as a label or `"BINANCE_API_KEY"` as a reference are not secrets)."""
    text = text.strip()
    if len(text) < 12 or " " in text or _PLACEHOLDER.match(text) or _ENV_NAME.match(text):
        return False
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _best(matches: list[tuple[str, Match]]) -> tuple[str, Match] | None:
    with_cat = [(n, m) for n, m in matches if m.category is not None]
    if not with_cat:
        return None
    return max(with_cat, key=lambda nm: (nm[1].strong, nm[1].weight))


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
