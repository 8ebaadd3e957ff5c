"""Properties of the four phases on generated trading code: the output compiles, a second run
changes nothing, and `migrations` keeps to its allowed imports."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext

from migrations.phases import PHASES

_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_NAMES = st.sampled_from(
    ["leverage", "lev", "size_usd", "position_size_usd", "size_pct", "T1_R", "kill_score", "x"]
)
_VALUES = st.sampled_from(["10", "10.0", "200.0", "0.65", "2.0", '"10"', "0.02"])
_SIGNATURES = st.sampled_from(
    ["(symbol)", "(symbol, equity_usdt)", "(pos)", "(params)", "(symbol) -> float",
     "(symbol) -> float | None", "(cfg, *, symbol=None)"]
)  # fmt: skip
_BODIES = st.sampled_from(
    [
        "{n} = {v}",
        "{n} = {n} or {v}",
        "if {n} is None:\n    {n} = {v}",
        "if ready:\n    if {n} is not None:\n        pass\n    else:\n        {n} = {v}\nelse:\n    {n} = 1",
        "for symbol in symbols:\n    {n} = params.get('{n}', {v})",
        "try:\n    {n} = load()\nexcept Exception:\n    {n} = {v}",
        "{n} = float(os.getenv('{n}', {v}))",
        "if kill_score >= {v}:\n    return True",
        "theta = HarvestTheta(T1_R={v})",
        "return HarvestTheta()",
    ]
)
_PRELUDE = (
    "import os\nfrom dataclasses import dataclass\n\n@dataclass\nclass HarvestTheta:\n"
    "    T1_R: float = 2.0\n    T2_R: float = 4.0\n    T3_R: float = 6.0\n    lock_R: float = 1.5\n\n"
    "K_CLOSE_THRESHOLD = 0.65\n\n"
)


@st.composite
def modules(draw) -> str:
    parts = [_PRELUDE]
    for i in range(draw(st.integers(1, 3))):
        body = draw(_BODIES).format(n=draw(_NAMES), v=draw(_VALUES))
        indented = "\n".join("    " + line for line in body.splitlines())
        parts.append(f"def f{i}{draw(_SIGNATURES)}:\n{indented}\n    return None\n\n")
    return "".join(parts)


def _run(phase, source: str) -> str:
    return phase(CodemodContext()).transform_module(cst.parse_module(source)).code


@pytest.mark.slow
@pytest.mark.parametrize("number", list(PHASES))
@_SETTINGS
@given(source=modules())
def test_output_compiles_and_a_second_run_is_a_no_op(number: str, source: str) -> None:
    phase = PHASES[number]
    once = _run(phase, source)
    compile(once, "generated.py", "exec")
    assert _run(phase, once) == once


def test_migrations_imports_only_engine_domain_and_audit() -> None:
    """DESIGN.md: migrations/ builds on audit/ and imports engine.domain only, never qctl."""
    package = Path(__file__).resolve().parents[2] / "migrations"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in ("qctl", "models", "tui"), f"{path.name} imports {name}"
                if top == "engine":
                    assert name == "engine.domain", f"{path.name} imports {name}"
