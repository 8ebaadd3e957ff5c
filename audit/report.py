"""The human report: a rich table per file, then an executive summary an analyst could have written.

Everything here is computed from the Finding fields (category, name, value, path, scope, severity,
rule id, message), so the same wording fits any codebase, not only the bundled example.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import PurePosixPath

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from audit.finding import AuditResult, Category, Finding, Severity
from audit.formats import ordered

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}

LABEL: dict[Category, str] = {
    Category.LEVERAGE: "Leverage",
    Category.POSITION_SIZING: "Position sizing",
    Category.SYMBOL_SELECTION: "Symbol selection",
    Category.HARVEST: "Harvest",
    Category.KILL_SCORE: "Kill score",
    Category.STOP_LOSS_TAKE_PROFIT: "Stop loss / take profit",
    Category.SAFETY_LIMIT: "Safety limits",
    Category.SECRET: "Secrets",
    Category.OTHER: "Other trading values",
}

_NOUN: dict[Category, str] = {
    Category.LEVERAGE: "leverage value",
    Category.POSITION_SIZING: "sizing value",
    Category.SYMBOL_SELECTION: "symbol-selection value",
    Category.HARVEST: "harvest value",
    Category.KILL_SCORE: "kill-score value",
    Category.STOP_LOSS_TAKE_PROFIT: "stop/target value",
    Category.SAFETY_LIMIT: "safety limit",
    Category.SECRET: "credential",
    Category.OTHER: "trading value",
}

# The syntactic form of a finding, guessed from its rule id (then its message), for phrasing only.
_FORMS: tuple[tuple[str, str], ...] = (
    ("fallback", "fallback"),
    ("get-default", "fallback"),
    ("env-default", "env default"),
    ("field-default", "field default"),
    ("param-default", "parameter default"),
    ("default", "default"),
    ("comparison", "threshold"),
    ("threshold", "threshold"),
    ("weight", "weight"),
    ("clamp", "clamp bound"),
    ("bound", "bound"),
    ("call-arg", "call argument"),
    ("argument", "call argument"),
    ("return", "return value"),
    ("dict", "dict value"),
    ("symbol", "symbol list"),
    ("constant", "constant"),
)

_LADDER_RUNG = re.compile(r"^(?:t|tp|target|level|rung)_?(\d{1,2})(?:_?r)?$", re.IGNORECASE)
_VALUE_WIDTH = 40


# ---------------------------------------------------------------- small wording helpers


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def _number(value: str) -> float | None:
    text = value.strip().strip("\"'").replace("_", "")
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _norm(value: str) -> str:
    """A value as people say it: '"10"', '10' and '10.0' are all 10; long text is cut short."""
    number = _number(value)
    if number is not None:
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    text = " ".join(value.split())
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _form(finding: Finding) -> str:
    haystack = finding.rule_id.lower()
    for key, form in _FORMS:
        if key in haystack:
            return form
    message = finding.message.lower()
    for key, form in _FORMS:
        if key in message:
            return form
    return ""


def _listing(names: Iterable[str], limit: int = 3) -> str:
    items = list(names)
    shown = items[:limit]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f", +{more} more" if more > 0 else "")


def _files(findings: list[Finding]) -> list[str]:
    """Files by how many of these findings they hold, then by name."""
    counts = Counter(f.path for f in findings)
    return sorted(counts, key=lambda p: (-counts[p], p))


def _where(findings: list[Finding]) -> str:
    files = _files(findings)
    if len(files) == 1:
        places = f"{_plural(len(findings), 'place')} in " if len(findings) > 1 else ""
        return f"in {places}{files[0]}"
    return f"in {_plural(len(files), 'file')} ({_listing(files)})"


def _forms_phrase(findings: list[Finding]) -> str:
    forms = Counter(_form(f) for f in findings)
    forms.pop("", None)
    parts = [_plural(n, form) for form, n in sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))]
    return ", ".join(parts)


def _main_form(findings: list[Finding]) -> str:
    forms = Counter(_form(f) for f in findings)
    forms.pop("", None)
    return forms.most_common(1)[0][0] if forms else ""


def _values(findings: list[Finding]) -> list[tuple[str, int]]:
    """Distinct values, most frequent first; ties go to the value spread over more files."""
    counts: Counter[str] = Counter()
    spread: dict[str, set[str]] = {}
    first: dict[str, int] = {}
    for index, finding in enumerate(findings):
        if not finding.value:
            continue
        value = _norm(finding.value)
        counts[value] += 1
        spread.setdefault(value, set()).add(finding.path)
        first.setdefault(value, index)
    return sorted(counts.items(), key=lambda kv: (-kv[1], -len(spread[kv[0]]), first[kv[0]]))


def _common_folder(paths: list[str]) -> str:
    """The folder all these relative paths share ('' if none), so sentences can name files shortly."""
    parents = [PurePosixPath(p).parent.parts for p in paths]
    if not parents or any(PurePosixPath(p).is_absolute() for p in paths):
        return ""
    shared: list[str] = []
    for parts in zip(*parents, strict=False):
        if len(set(parts)) != 1 or parts[0] in ("", "."):
            break
        shared.append(parts[0])
    return "/".join(shared)


def _with_value(findings: list[Finding], value: str) -> list[Finding]:
    return [f for f in findings if _norm(f.value) == value]


# ---------------------------------------------------------------- executive summary


def _generic(category: Category, items: list[Finding], unit: str = "") -> str:
    """'<Label>: hardcoded <most common value> <form> in <files>; <n> values in all (also ...)'."""
    label, noun = LABEL[category], _NOUN[category]
    values = _values(items)

    def show(value: str) -> str:
        return value + unit if unit and _number(value) is not None else value

    if not values:
        return f"{label}: {_plural(len(items), 'hardcoded ' + noun)} {_where(items)}."
    top, top_count = values[0]
    if top_count > 1:
        top_items = _with_value(items, top)
        form = _main_form(top_items)
        head = f"{label}: hardcoded {show(top)}{' ' + form if form else ''} {_where(top_items)}"
        tail = f"; {_plural(len(items), noun)} in all"
        others = [show(v) for v, _ in values[1:]]
        if others:
            tail += f" (also {_listing(others, 3)})"
        return head + tail + "."
    shown = _listing((show(v) for v, _ in values), 4)
    return f"{label}: {_plural(len(items), 'hardcoded ' + noun)} ({shown}) {_where(items)}."


def _leverage(items: list[Finding]) -> str:
    return _generic(Category.LEVERAGE, items, unit="x")


def _harvest(items: list[Finding]) -> str:
    rungs: dict[int, list[Finding]] = {}
    for finding in items:
        match = _LADDER_RUNG.match(finding.name or "")
        if match and _number(finding.value) is not None:
            rungs.setdefault(int(match.group(1)), []).append(finding)
    if len(rungs) < 2:
        return _generic(Category.HARVEST, items)
    order = sorted(rungs)
    ladder_values = []
    for rung in order:
        value, _count = _values(rungs[rung])[0]
        number = _number(value)
        ladder_values.append(
            f"{number:.1f}" if number is not None and number.is_integer() else value
        )
    ladder_items = [f for rung in order for f in rungs[rung]]
    names = "/".join(f"T{rung}" for rung in order)
    forms = _forms_phrase(ladder_items)
    line = (
        f"Harvest: ladder {names} = {'/'.join(ladder_values)} R hardcoded in "
        f"{_plural(len(ladder_items), 'place')}{' (' + forms + ')' if forms else ''}"
        f" across {_plural(len(_files(ladder_items)), 'file')} ({_listing(_files(ladder_items))})"
    )
    rest = len(items) - len(ladder_items)
    if rest:
        line += f"; {_plural(rest, 'other harvest value')}"
    return line + "."


def _kill_score(items: list[Finding]) -> str:
    values = _values(items)
    if not values:
        return _generic(Category.KILL_SCORE, items)
    top, _count = values[0]
    top_items = _with_value(items, top)
    is_threshold = any("threshold" in f.name.lower() or _form(f) == "threshold" for f in top_items)
    noun = "threshold" if is_threshold else "value"
    places = _plural(len(top_items), "place")
    line = f"Kill score: {noun} {top} in {places} ({_listing(_files(top_items))})"
    line += f"; {_plural(len(items), 'kill-score value')} in all"
    others = [v for v, _ in values[1:]]
    if others:
        line += f" (also {_listing(others)})"
    return line + "."


def _safety_limits(items: list[Finding]) -> str:
    looser = [f for f in items if f.severity is Severity.ERROR]
    line = f"Safety limits: {len(items)} declared"
    if not looser:
        return line + ", none looser than the owner's hard limits."
    shown = _listing((f"{f.name or f.scope} = {_norm(f.value)} in {f.path}" for f in looser), 3)
    return line + f", {len(looser)} looser than the owner's hard limits ({shown})."


def _secrets(items: list[Finding]) -> str:
    names = list(dict.fromkeys(f.name for f in items if f.name))
    named = f" ({_listing(names)})" if names else ""
    return (
        f"Secrets: {_plural(len(items), 'hardcoded credential')}{named} {_where(items)}; "
        f"rotate {'it' if len(items) == 1 else 'them'} and load from the environment or a vault."
    )


_LINE: dict[Category, Callable[[list[Finding]], str]] = {
    Category.LEVERAGE: _leverage,
    Category.HARVEST: _harvest,
    Category.KILL_SCORE: _kill_score,
    Category.SAFETY_LIMIT: _safety_limits,
    Category.SECRET: _secrets,
}


def _category_line(category: Category, items: list[Finding]) -> str:
    make = _LINE.get(category)
    return make(items) if make else _generic(category, items)


def executive_summary(result: AuditResult) -> list[str]:
    """One sentence per category found in production code (most severe first), then the totals."""
    base = _common_folder(sorted({f.path for f in result.findings}))
    findings = [replace(f, path=f.path[len(base) + 1 :]) if base else f for f in result.findings]
    production = [f for f in findings if not f.is_parse_error and not f.is_test]
    in_tests = [f for f in findings if not f.is_parse_error and f.is_test]
    by_category: dict[Category, list[Finding]] = {}
    for finding in ordered(production):
        by_category.setdefault(finding.category, []).append(finding)
    categories = list(Category)
    order = sorted(
        by_category,
        key=lambda c: (
            -max(f.severity.rank for f in by_category[c]),
            -len(by_category[c]),
            categories.index(c),
        ),
    )
    lines = [_category_line(c, by_category[c]) for c in order]
    broken = sorted({f.path for f in findings if f.is_parse_error})
    lines.append(_totals(result, production, in_tests, broken, base))
    return lines


def _totals(
    result: AuditResult,
    production: list[Finding],
    in_tests: list[Finding],
    broken: list[str],
    base: str,
) -> str:
    scanned = f"{_plural(result.files_scanned, 'file')} scanned"
    if result.files_from_cache:
        scanned += f" ({result.files_from_cache} from cache)"
    if production:
        severities = Counter(f.severity for f in production)
        parts = [
            f"{severities[s]} info" if s is Severity.INFO else _plural(severities[s], str(s))
            for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
            if severities[s]
        ]
        files = len({f.path for f in production})
        line = (
            f"In all: {_plural(len(production), 'finding')} ({', '.join(parts)}) in "
            f"{_plural(files, 'file')}{' under ' + base + '/' if base else ''}; {scanned}"
        )
    else:
        new = "new " if result.baselined else ""
        line = f"No {new}hardcoded trading decisions in production code; {scanned}"
    extras = []
    if in_tests:
        extras.append(f"{len(in_tests)} in test code")
    if result.suppressed:
        extras.append(f"{result.suppressed} suppressed")
    if result.baselined:
        extras.append(f"{result.baselined} baselined")
    if extras:
        line += ", " + ", ".join(extras)
    line += "."
    if broken:
        line += f" Could not parse {_plural(len(broken), 'file')}: {_listing(broken, 5)}."
    return line


# ---------------------------------------------------------------- tables


def _confidence(value: float) -> str:
    return f"{round(max(0.0, min(1.0, value)) * 100):d}%"


def _file_table(path: str, findings: list[Finding]) -> Table:
    table = Table(
        title=f"[bold]{escape(path)}[/]  [dim]{_plural(len(findings), 'finding')}[/]",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=False,
        expand=True,
    )
    table.add_column("Line", justify="right", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Category", no_wrap=True)
    table.add_column("Scope", overflow="fold")
    table.add_column("Name = value", overflow="fold")
    table.add_column("Conf", justify="right", no_wrap=True)
    table.add_column("Why", overflow="fold", ratio=1)
    for f in sorted(findings, key=lambda f: (f.line, f.column, f.rule_id)):
        what = _what(f)
        table.add_row(
            Text(f"{f.line}:{f.column + 1}"),
            Text(str(f.severity), style=SEVERITY_STYLE[f.severity]),
            Text(str(f.category)),
            Text(f.scope),
            Text(what),
            Text(_confidence(f.confidence), style="dim"),
            Text(f.message),
        )
    return table


def _print_files(console: Console, findings: list[Finding], full: bool) -> None:
    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        by_file.setdefault(finding.path, []).append(finding)
    for path in sorted(by_file):
        if full:
            console.print(_file_table(path, by_file[path]))
        else:
            for finding in sorted(by_file[path], key=lambda f: (f.line, f.column, f.rule_id)):
                _print_concise(console, finding)


# ---------------------------------------------------------------- concise (ruff-style) lines

STYLES = ("auto", "concise", "full")
# The full table is used (with style "auto") only when its "Why" column gets at least this much.
_WHY_MIN_WIDTH = 60
_VALUE_MIN_WIDTH = 8
_NAME_MIN_WIDTH = 10


def shorten(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    if width <= 1:
        return flat[:width]
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def concise_lines(finding: Finding, width: int) -> tuple[str, str]:
    """The two lines of a finding: `path:line:col rule category name = value`, then severity: why.

    Both fit `width` columns: name and value are shortened first, then the first line is cut;
    the why is cut to one line (the full text is in every machine format).
    """
    where = f"{finding.path}:{finding.line}:{finding.column + 1}"
    why = "    " + shorten(f"{finding.severity}: {finding.message}", width - 4)
    if finding.is_parse_error:
        return shorten(f"{where} {finding.rule_id}", width), why
    head = f"{where} {finding.rule_id} {finding.category}"
    room = width - len(head) - 1
    what = _what(finding, _VALUE_WIDTH)
    if len(what) > room and finding.name and room >= _NAME_MIN_WIDTH + 3 + _VALUE_MIN_WIDTH:
        name = shorten(finding.name, max(room // 2, _NAME_MIN_WIDTH))
        what = f"{name} = {shorten(finding.value, room - len(name) - 3)}"
    what = shorten(what, max(room, 0))
    return shorten(f"{head} {what}" if what else head, width), why


def _print_concise(console: Console, finding: Finding) -> None:
    first, why = concise_lines(finding, console.width)
    console.print(Text(first), no_wrap=True, overflow="ellipsis", crop=True)
    second = Text(why)
    second.stylize(SEVERITY_STYLE[finding.severity], 4, 4 + len(str(finding.severity)))
    console.print(second, no_wrap=True, overflow="ellipsis", crop=True)


def full_table_fits(findings: list[Finding], width: int) -> bool:
    """Whether the full table leaves the "Why" column room to read at this width."""
    if not findings:
        return True
    needed = {
        "line": max(len(f"{f.line}:{f.column + 1}") for f in findings),
        "severity": max(len("Severity"), *(len(str(f.severity)) for f in findings)),
        "category": max(len("Category"), *(len(str(f.category)) for f in findings)),
        "scope": max(len(f.scope) for f in findings),
        "what": max(len(_what(f)) for f in findings),
        "conf": len("Conf"),
    }
    gaps = 2 * len(needed)  # the SIMPLE_HEAD box pads each column by one on each side
    return width - sum(needed.values()) - gaps >= _WHY_MIN_WIDTH


def _what(finding: Finding, limit: int = _VALUE_WIDTH) -> str:
    value = shorten(finding.value, limit)
    return f"{finding.name} = {value}" if finding.name else value


def _parse_error_table(errors: list[Finding]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("File", overflow="fold")
    table.add_column("Reason", overflow="fold", ratio=1)
    for f in sorted(errors, key=lambda f: f.path):
        table.add_row(Text(f.path), Text(f.message, style=SEVERITY_STYLE[f.severity]))
    return table


def print_report(
    result: AuditResult, console: Console, *, show_tests: bool = True, style: str = "auto"
) -> None:
    """Print the findings (production, then tests), parse errors, and the executive summary.

    `style`: "concise" prints each finding in two lines (ruff-style), "full" a table per file,
    "auto" the table only when it fits the console's width.
    """
    if style not in STYLES:
        raise ValueError(f"unknown report style {style!r} (choose from {', '.join(STYLES)})")
    real = [f for f in result.findings if not f.is_parse_error]
    production = [f for f in real if not f.is_test]
    tests = [f for f in real if f.is_test]
    shown = production + (tests if show_tests else [])
    full = style == "full" or (style == "auto" and full_table_fits(shown, console.width))
    if production:
        _print_files(console, production, full)
    if tests:
        if show_tests:
            console.rule("[bold]Findings in test code[/]", align="left")
            _print_files(console, tests, full)
        else:
            console.print(
                Text(f"{_plural(len(tests), 'finding')} in test code not shown.", style="dim")
            )
    errors = result.parse_errors
    if errors:
        console.rule(f"[bold]Files that could not be audited[/] ({len(errors)})", align="left")
        if full:
            console.print(_parse_error_table(errors))
        else:
            for error in sorted(errors, key=lambda f: f.path):
                _print_concise(console, error)
    print_summary(result, console)


def print_summary(result: AuditResult, console: Console) -> None:
    """Print only the executive summary panel (what `qctl audit --quiet` shows)."""
    worst_is_error = any(
        f.severity is Severity.ERROR for f in result.findings if not f.is_parse_error
    )
    console.print(
        Panel(
            Text("\n".join(executive_summary(result))),
            title="[bold]Executive summary[/]",
            title_align="left",
            border_style="red" if worst_is_error else "blue",
        )
    )
