"""A cheap text test that tells which files cannot hold a finding, so they are never parsed.

Every finding needs a name the vocabulary knows (a category, generic, context, indicator or vote
word, or a sink of the reachability pass), a declared safety-limit name from config, a
symbol-shaped string, a credential-shaped string, or an upper-case module constant set to a
number (another module may decide with it). A file whose text holds none of them cannot
produce a finding, and parsing it with libcst (the expensive part of an audit) is skipped.

The test is conservative by construction: it reads every identifier-like run of the raw text
(names, attribute names, dict keys, comments, string contents), the file's own path, and the text
with adjacent string literals glued (`"lev" "erage"`); a file with escape sequences or backslash
continuations (which could spell a word the text does not show) is always parsed. The word list
is derived from the data the rules read (`vocabulary.toml`, the config's vocabulary and
safety-limit globs, the word sets of `audit.rules` and `audit.reachability`), so a word added
there is honoured here; `tests/audit/test_prefilter_soundness.py` checks every rule example.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files

from audit.config import AuditConfig
from audit.vocabulary import words

# Tables of vocabulary.toml that only ever *remove* findings: their words cannot make one.
_NEGATIVE_TABLES = frozenset({"neutral", "neutral_calls", "conversions"})
# Module-level word sets in the rule modules that only remove findings.
_NEGATIVE_MARKERS = ("DISPLAY", "PLUMBING", "NEUTRAL", "PASS_THROUGH", "PLACEHOLDER")

_IDENT = re.compile(r"[A-Za-z0-9_]+")
# Escapes and continuations can spell a word the raw text does not show: such files are parsed.
_HIDDEN = re.compile(r"\\(?:[xuU0-7]|N\{|\r?\n)")
# The gap between two adjacent string literals (implicit concatenation), prefixes included.
_GLUE = re.compile(r"""['"](?:\s|\\|#[^\n]*)*[rRbBuUfF]{0,2}['"]""")
# A module constant set to a number (`STAIRCASE_LOOKBACK = 5`): its name may say nothing, yet
# another module may import it and decide with it (audit.imports), so such files are parsed.
_MODULE_CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*\s*(?::[^=\n]*)?=\s*[-+(]*\.?\d", re.MULTILINE)
# A run that could be a key, token or secret (letters and digits mixed, 16+ characters).
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")


class Prefilter:
    """Decides, from text alone, whether a file may hold a finding under one config."""

    def __init__(self, config: AuditConfig) -> None:
        phrases = set(_vocabulary_phrases(tuple(sorted(_flatten(config.vocabulary)))))
        self.enabled = True
        for pattern in config.safety_limit_names:
            runs = [w for run in _IDENT.findall(pattern) for w in words(run)]
            if not runs:
                self.enabled = False  # a glob like "*" declares every name a limit
            phrases.update((w,) for w in runs)
        self.phrases = tuple(sorted(phrases))
        self.first_words = frozenset(p[0] for p in self.phrases)
        self.symbol = _symbol_pattern()

    def may_hold_findings(self, text: str, path: str = "") -> bool:
        """False only when no rule could report anything in this file (it still must parse)."""
        if not self.enabled or _HIDDEN.search(text):
            return True
        glued = _GLUE.sub("", text)
        if self.symbol.search(text) or self.symbol.search(glued):
            return True
        if _credential_like(text) or _credential_like(glued):
            return True
        if _MODULE_CONSTANT.search(text):
            return True
        found = _words_of(_IDENT.findall(text)) | _words_of(_IDENT.findall(glued))
        found |= _words_of(_IDENT.findall(path))
        if not (found & self.first_words):
            return False
        return any(all(w in found for w in phrase) for phrase in self.phrases)


def _credential_like(text: str) -> bool:
    """A run of 16+ key characters with both letters and digits (a key, token or secret)."""
    for run in _TOKEN_RUN.findall(text):
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return True
    return False


_WORDS_CACHE: dict[str, tuple[str, ...]] = {}


def _words_of(idents: Iterable[str]) -> set[str]:
    out: set[str] = set()
    cache = _WORDS_CACHE
    for ident in set(idents):
        split = cache.get(ident)
        if split is None:
            split = words(ident)
            if len(cache) < 200_000:
                cache[ident] = split
        out.update(split)
    return out


def _flatten(value: object) -> Iterable[str]:
    """Every string inside a (config) vocabulary table."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _flatten(item)


@lru_cache(maxsize=8)
def _vocabulary_phrases(extra: tuple[str, ...]) -> frozenset[tuple[str, ...]]:
    raw = tomllib.loads(files("audit").joinpath("vocabulary.toml").read_text("utf-8"))
    entries = [
        s for table, body in raw.items() if table not in _NEGATIVE_TABLES for s in _flatten(body)
    ]
    entries += list(extra) + list(_rule_module_words())
    phrases: set[tuple[str, ...]] = set()
    for entry in entries:
        phrase = tuple(w for part in entry.split("_") for w in words(part))
        if phrase:
            phrases.add(phrase)
    return frozenset(phrases)


def _rule_module_words() -> Iterable[str]:
    """Word sets the rule modules keep in code (`_TRADING_CALL_WORDS`, `_TRADING_KEYWORDS`...)."""
    import importlib

    for name in ("audit.rules", "audit.reachability", "audit.scan"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, value in vars(module).items():
            if "WORD" not in attr or any(marker in attr for marker in _NEGATIVE_MARKERS):
                continue
            if isinstance(value, frozenset | set | tuple) and all(
                isinstance(v, str) for v in value
            ):
                yield from value


@lru_cache(maxsize=1)
def _symbol_pattern() -> re.Pattern[str]:
    """The rules' symbol shape, unanchored, between quotes or commas (`"BTCUSDT"`, `"SOL,ETH"`)."""
    from audit import rules

    symbol = getattr(rules, "SYMBOL", None)
    # without the rules' own shape, any quoted upper-case run counts as a possible symbol
    inner = symbol.pattern.removeprefix("^").removesuffix("$") if symbol else r"[A-Z0-9]{2,}"
    return re.compile(rf"(?:(?<=['\",])|(?<=,\s))(?:{inner})(?=['\",\s])")
