"""Words that tell a trading decision from plumbing, and the classifier that reads them.

The vocabulary is data (`vocabulary.toml`), extendable from config, so a team can teach the auditor
its own names without touching code.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from audit.finding import Category

# Words of a callee that only shows its arguments to a reader (`logger.info`, `plt.plot`,
# `send_message`, `exit_msg`): a value passed there is display, not a decision. The flow search
# (audit.reachability) and the cross-module uses of constants (audit.imports) both read it.
DISPLAY_CALL_WORDS = frozenset(
    {
        "print", "pprint", "log", "logger", "logging", "debug", "info", "warning", "warn", "error",
        "exception", "critical", "render", "plot", "plots", "draw", "chart", "charts", "figure",
        "fig", "trace", "show", "display", "format", "jsonify", "dumps", "echo", "template",
        "html", "markdown", "table", "row", "column", "label", "title", "annotate", "overlay",
        "savefig", "legend", "axis", "ax", "plt", "st", "response", "notify", "message",
        "messages", "msg", "emit", "tooltip", "widget", "panel", "style", "color", "text", "write",
        "subplot", "scatter", "line", "candlestick", "layout", "console", "rich", "tui",
    }
)  # fmt: skip

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@lru_cache(maxsize=1 << 16)
def words(name: str) -> tuple[str, ...]:
    """Split an identifier into lowercase words, keeping letter+digit pairs like T1 together.

    `MAX_NOTIONAL_PER_TRADE_USDT` -> (max, notional, per, trade, usdt); `HarvestTheta` -> (harvest,
    theta); `T1_R` -> (t1, r); `kSL` -> (k, sl).
    """
    out: list[str] = []
    for part in re.split(r"[^0-9A-Za-z]+", name):
        if not part:
            continue
        if re.fullmatch(r"[A-Za-z]\d", part):
            out.append(part.lower())
            continue
        pieces = _WORD.findall(part)
        # glue a lone letter with the digit that follows it: "T1R" -> t1 r
        merged: list[str] = []
        for piece in pieces:
            if piece.isdigit() and merged and len(merged[-1]) == 1 and merged[-1].isalpha():
                merged[-1] += piece
            else:
                merged.append(piece)
        out.extend(p.lower() for p in merged)
    return tuple(out)


def _phrases(entries: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(e.lower().split("_")) for e in entries)


@dataclass(frozen=True)
class Match:
    """What the vocabulary says about one name."""

    category: Category | None = None
    strong: bool = False
    weight: int = 0
    generic: bool = False
    neutral: bool = False
    indicator: bool = False


@dataclass(frozen=True)
class Vocabulary:
    strong: Mapping[Category, tuple[tuple[str, ...], ...]]
    weak: Mapping[Category, tuple[tuple[str, ...], ...]]
    generic: tuple[tuple[str, ...], ...]
    neutral: tuple[tuple[str, ...], ...]
    conversions: frozenset[float]
    divisors: frozenset[float]
    neutral_calls: frozenset[str] = field(default_factory=frozenset)
    context: frozenset[str] = field(default_factory=frozenset)
    indicators: tuple[tuple[str, ...], ...] = ()
    signal_context: frozenset[str] = field(default_factory=frozenset)
    votes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def load(cls, extra: Mapping[str, object] | None = None) -> Vocabulary:
        """The packaged vocabulary, extended by `extra` (the config's `vocabulary` table)."""
        raw = tomllib.loads(files("audit").joinpath("vocabulary.toml").read_text("utf-8"))
        strong: dict[Category, list[str]] = {}
        weak: dict[Category, list[str]] = {}
        for cat_name, entry in raw["category"].items():
            cat = Category(cat_name)
            strong[cat] = list(entry.get("strong", []))
            weak[cat] = list(entry.get("weak", []))
        generic = list(raw["generic"]["words"])
        neutral = list(raw["neutral"]["words"])
        for key, value in (extra or {}).items():
            if key == "generic":
                generic += list(_as_words(value, key))
            elif key == "neutral":
                neutral += list(_as_words(value, key))
            else:
                try:
                    cat = Category(key)
                except ValueError:
                    raise ValueError(f"unknown vocabulary category {key!r}") from None
                if isinstance(value, Mapping):
                    strong[cat] += list(_as_words(value.get("strong", []), key))
                    weak[cat] += list(_as_words(value.get("weak", []), key))
                else:
                    strong[cat] += list(_as_words(value, key))
        return cls(
            strong={c: _phrases(v) for c, v in strong.items()},
            weak={c: _phrases(v) for c, v in weak.items()},
            generic=_phrases(generic),
            neutral=_phrases(neutral),
            conversions=frozenset(float(v) for v in raw["conversions"]["values"]),
            divisors=frozenset(float(v) for v in raw["conversions"]["divisors"]),
            neutral_calls=frozenset(raw["neutral_calls"]["names"]),
            context=frozenset(raw["context"]["words"]),
            indicators=_phrases(raw["indicators"]["words"]),
            signal_context=frozenset(raw["signal_context"]["words"]),
            votes=frozenset(raw["votes"]["words"]),
        )

    def is_signal_context(self, names: Iterable[str]) -> bool:
        """Whether a function or class name says it turns market data into entries or exits."""
        return any(self.signal_context & set(words(n)) for n in names if n)

    def is_vote(self, name: str) -> bool:
        """A count of agreeing conditions (`votes`, `confirmations`, `bullish_count`)."""
        return bool(self.votes & set(words(name)))

    def is_trading_context(self, names: Iterable[str]) -> bool:
        """Whether any of these names (function, class, file, folders) speaks of trading."""
        for name in names:
            if not name:
                continue
            if self.match(name).strong or self.context & set(words(name)):
                return True
        return False

    def match(self, name: str) -> Match:
        """Classify one name; the longest matching phrase wins, strong before weak."""
        cache = self.__dict__.setdefault("_cache", {})
        found = cache.get(name)
        if found is None:
            found = cache[name] = self._match(name)
        return found

    def _match(self, name: str) -> Match:
        seq = words(name)
        if not seq:
            return Match()
        index = self.__dict__.get("_index") or self._build_index()
        best: tuple[int, int, int, Category] | None = None  # (strong, length, -order, category)
        neutral = generic = indicator = False
        for i, word in enumerate(seq):
            for phrase, size, kind, rank in index.get(word, ()):
                if seq[i : i + size] != phrase:
                    continue
                if kind == "category":
                    if best is None or rank[:3] > best[:3]:
                        best = rank
                elif kind == "neutral":
                    neutral = True
                elif kind == "generic":
                    generic = True
                else:
                    indicator = True
        if best is None:
            return Match(generic=generic, neutral=neutral, indicator=indicator and not neutral)
        strong, length, _order, cat = best
        if neutral and not strong:
            return Match(generic=generic, neutral=True)
        return Match(
            category=cat,
            strong=bool(strong),
            weight=length,
            generic=generic,
            neutral=neutral,
            indicator=indicator,
        )

    def _build_index(self) -> dict[str, list[tuple]]:
        """Every phrase under its first word: a name is matched against the few it can hold.

        A category phrase carries (strong, length, -order, category): the longest phrase wins,
        strong before weak, and among equals the first in table order, as a scan of every table
        in order would decide.
        """
        index: dict[str, list[tuple]] = {}
        order = 0
        for strength, table in ((1, self.strong), (0, self.weak)):
            for cat, phrases in table.items():
                for phrase in phrases:
                    rank = (strength, len(phrase), -order, cat)
                    index.setdefault(phrase[0], []).append((phrase, len(phrase), "category", rank))
                    order += 1
        for kind, phrases in (
            ("neutral", self.neutral),
            ("generic", self.generic),
            ("indicator", self.indicators),
        ):
            for phrase in phrases:
                index.setdefault(phrase[0], []).append((phrase, len(phrase), kind, None))
        self.__dict__["_index"] = index
        return index


def _as_words(value: object, key: str) -> Iterable[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"vocabulary.{key} must be a list of words")
