"""Keep migrated lines inside the repository's line length.

A rewrite such as `close_qty = qty / 2` -> `close_qty = qty * qctl_policy.policy_value_or_skip(
"harvest_t1_close_frac", pos.symbol)` can push a line past the project's limit, and a linter in
the user's CI then fails on code qctl wrote. After a phase, each line that the phase made too
long (a line of the original file, unchanged, is left as it was) is split the way black and
ruff format would split it: the outermost call on it (a policy look-up, or a call that was
passed `symbol=`), or the parameters of a `def` line that was given a `symbol` parameter, go on
an indented line of their own, or one per line with a trailing comma when they do not fit on
one; repeated while a line it made is still too long. A call inside an f-string's braces is
left alone: a line break there needs Python 3.12.

The width is the project's (`line_length_of`): `[tool.qctl.migrate] line-length`, else ruff's or
black's `line-length`, else flake8's `max-line-length`, else 88.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

DEFAULT_LINE_LENGTH = 88


def line_length_of(root: Path, configured: object = None) -> int:
    """The line length the repository at `root` is formatted to (see the module docstring)."""
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return configured
    for name, keys in (
        ("ruff.toml", ("line-length",)),
        (".ruff.toml", ("line-length",)),
        ("pyproject.toml", ("tool.ruff.line-length", "tool.black.line-length")),
    ):
        try:
            data = tomllib.loads((root / name).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        for key in keys:
            value: object = data
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    for name in ("setup.cfg", ".flake8", "tox.ini"):
        parser = configparser.ConfigParser()
        try:
            parser.read(root / name, encoding="utf-8")
            value = parser.get("flake8", "max-line-length", fallback="")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    return DEFAULT_LINE_LENGTH


class _Wrap(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, lines: list[str], old: set[str], width: int, unit: str) -> None:
        super().__init__()
        self.lines, self.old, self.width, self.unit = lines, old, width, unit
        self.todo: dict[cst.Call, str] = {}  # call -> indentation of its line
        self.todo_defs: dict[cst.FunctionDef, tuple[str, bool]] = {}  # indentation, hugged
        self.taken: set[int] = set()  # lines with a call chosen already: one split per line
        self.in_fstring = 0

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self.in_fstring += 1  # a line break inside an f-string's braces is 3.12+ only

    def leave_FormattedString(
        self, original: cst.FormattedString, updated: cst.FormattedString
    ) -> cst.FormattedString:
        self.in_fstring -= 1
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        params = node.params
        if params.posonly_params or not isinstance(params.posonly_ind, cst.MaybeSentinel):
            return  # `/` in the list: rare enough to leave as it is
        head = self.get_metadata(PositionProvider, node.name).start.line
        names = _elements(params)
        if not names:
            return
        first, last = (
            getattr(params, n) if i is None else getattr(params, n)[i]
            for n, i in (names[0], names[-1])
        )
        line = self.get_metadata(PositionProvider, first).start.line
        if line != self.get_metadata(PositionProvider, last).end.line or line in self.taken:
            return
        text = self.lines[line - 1]
        if len(text) <= self.width or text in self.old:
            return
        self.taken.add(line)
        def_line = self.lines[head - 1]
        # `def f(a, b) -> r:` on one line, or the parameters alone on the line after `def f(`
        # (then only one per line can help)
        self.todo_defs[node] = (def_line[: len(def_line) - len(def_line.lstrip())], head != line)

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        todo = self.todo_defs.get(original)
        if todo is None:
            return updated
        base, hugged = todo
        params = updated.params
        names = _elements(params)
        items = [getattr(params, n) if i is None else getattr(params, n)[i] for n, i in names]
        inner = base + self.unit
        flat = cst.Module([]).code_for_node(params).strip().rstrip(",")
        one_line = not hugged and len(inner) + len(flat) <= self.width
        new = []
        for k, item in enumerate(items):
            last = k == len(items) - 1
            if one_line and last:
                item = item.with_changes(
                    comma=cst.MaybeSentinel.DEFAULT, whitespace_after_param=_newline(base)
                )
            elif one_line:
                item = item.with_changes(
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                )
            else:
                item = item.with_changes(
                    comma=cst.Comma(whitespace_after=_newline(base if last else inner))
                )
                if isinstance(item, cst.Param):
                    item = item.with_changes(whitespace_after_param=cst.SimpleWhitespace(""))
            new.append(item)
        changes: dict[str, object] = {}
        for (n, i), item in zip(names, new, strict=True):
            if i is None:
                changes[n] = item
            else:
                changes.setdefault(n, list(getattr(params, n)))
                changes[n][i] = item  # type: ignore[index]
        return updated.with_changes(
            whitespace_before_params=_newline(inner), params=params.with_changes(**changes)
        )

    def visit_Call(self, node: cst.Call) -> None:
        if self.in_fstring or not node.args:
            return
        pos = self.get_metadata(PositionProvider, node)
        line = pos.start.line
        if line != pos.end.line or line in self.taken:
            return
        text = self.lines[line - 1]
        if len(text) <= self.width or text in self.old:
            return
        self.taken.add(line)
        self.todo[node] = text[: len(text) - len(text.lstrip())]

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        base = self.todo.get(original)
        if base is None:
            return updated
        inner = base + self.unit
        newline = _newline
        bare = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in updated.args]
        flat = ", ".join(cst.Module([]).code_for_node(a) for a in bare)
        if len(inner) + len(flat) <= self.width:  # the arguments on one line of their own
            space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            args = [a.with_changes(comma=space) for a in bare[:-1]]
            args.append(bare[-1].with_changes(whitespace_after_arg=newline(base)))
        else:  # one per line, with black's trailing comma
            args = [a.with_changes(comma=cst.Comma(whitespace_after=newline(inner))) for a in bare]
            args[-1] = args[-1].with_changes(
                comma=cst.Comma(whitespace_after=newline(base)),
                whitespace_after_arg=cst.SimpleWhitespace(""),
            )
        return updated.with_changes(whitespace_before_args=newline(inner), args=args)


def _newline(indent: str) -> cst.ParenthesizedWhitespace:
    """A line break inside brackets, the next line indented by `indent`."""
    return cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(),
        empty_lines=[],
        indent=False,
        last_line=cst.SimpleWhitespace(indent),
    )


def _elements(params: cst.Parameters) -> list[tuple[str, int | None]]:
    """The parameters in source order, as (field of `cst.Parameters`, index or None)."""
    out: list[tuple[str, int | None]] = [("params", i) for i in range(len(params.params))]
    if not isinstance(params.star_arg, cst.MaybeSentinel):
        out.append(("star_arg", None))
    out += [("kwonly_params", i) for i in range(len(params.kwonly_params))]
    if params.star_kwarg is not None:
        out.append(("star_kwarg", None))
    return out


_PASSES = 8  # each pass splits one call per long line; nesting deeper than this stays long


def wrap_long_lines(old_text: str, new_text: str, width: int) -> str:
    """`new_text` with the lines a phase made longer than `width` split (module docstring);
    the text as it was when nothing needs it or a split would not parse."""
    old = set(old_text.splitlines())
    out = new_text
    for _ in range(_PASSES):
        lines = out.splitlines()
        if all(len(line) <= width or line in old for line in lines):
            break
        try:
            module = cst.parse_module(out)
            wrap = _Wrap(lines, old, width, module.default_indent)
            split = MetadataWrapper(module, unsafe_skip_copy=True).visit(wrap).code
            compile(split, "<migrated>", "exec")
        except (cst.ParserSyntaxError, SyntaxError, ValueError):
            return out
        if split == out:
            break
        out = split
    return out
