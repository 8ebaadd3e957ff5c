"""Property: whatever valid Python a user brings, the auditor returns findings, never an exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesmith
import libcst as cst
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit.finding import Finding
from audit.runner import SourceFile, audit_file
from audit.scan import scan_source
from tests.audit.helpers import CONFIG

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def _check(source: str) -> None:
    try:
        result = scan_source(source, "fuzz/module.py", CONFIG)
    except cst.ParserSyntaxError:
        # valid Python that libcst's parser refuses ("\n\\\r\n": a line continuation before
        # the end of the file): scan_source says so by raising, and the runner turns it into a
        # parse-error finding, never a crash
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "module.py"
            path.write_text(source, encoding="utf-8", newline="")
            outcome = audit_file(SourceFile(str(path), "module.py", "module.py"), CONFIG)
        assert [f.is_parse_error for f in outcome.findings] == [True]
        return
    for finding in result.findings:
        assert isinstance(finding, Finding)
        assert finding.line >= 1 and finding.column >= 0
        assert finding.message


@_SETTINGS
@given(hypothesmith.from_grammar())
@example("\n\\\r\n")  # found by this test: valid Python, refused by libcst
def test_grammar_generated_python_never_crashes(source: str) -> None:
    _check(source)


@_SETTINGS
@given(hypothesmith.from_node())
def test_libcst_generated_python_never_crashes(source: str) -> None:
    _check(source)


_NAMES = st.sampled_from(
    [
        "leverage",
        "T1_R",
        "kill_score",
        "PORT",
        "size_usd",
        "x",
        "params",
        "os.environ",
        "self.lev",
        "CORE_SYMBOLS",
    ]
)
_VALUES = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        ['"200"', '"BTCUSDT"', "1e-9", "0x1F", "1_000", "2 ** 64", "10 ** 400", "1 / 0", "-0.0"]
    ),
)
_TEMPLATES = st.sampled_from(
    [
        "{n} = {v}",
        "def f({n}={v}):\n    return {v}",
        "if {n} >= {v}:\n    pass",
        "y = {n}.get('k', {v}) or {v}",
        "z = min(max({n}, {v}), {v}) * {v} / {v}",
        "w = {{'k': {v}, {v}: {n}}}",
        "q = float(os.getenv('K', {v}))",
        "r = [{v}, {v}][{v}:{v}]",
        "class C:\n    {n}: float = Field({v}, ge={v})",
    ]
)


@_SETTINGS
@given(st.lists(st.tuples(_TEMPLATES, _NAMES, _VALUES), min_size=1, max_size=12))
def test_trading_shaped_python_never_crashes(parts: list[tuple[str, str, str]]) -> None:
    lines = []
    for template, name, value in parts:
        code = template.format(
            n=name.replace(".", "_")
            if "def" in template or ":" in template.split("\n")[-1]
            else name,
            v=value,
        )
        lines.append(code)
    source = "\n".join(lines) + "\n"
    try:
        compile(source, "<fuzz>", "exec")
    except (SyntaxError, ValueError):
        return
    _check(source)
