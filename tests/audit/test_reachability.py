"""Reachability: where a literal flows decides between a trading decision and display or plumbing."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from audit.finding import AuditResult
from audit.reachability import (
    DISPLAY,
    OPEN,
    PLUMBING,
    TRADING,
    FlowIndex,
    Verdict,
    explain,
    explain_finding,
    select_finding,
)
from tests.audit.helpers import scan


def _verdict(code: str, literal: str) -> Verdict:
    """The verdict for the first literal whose source text is `literal`."""
    module = cst.parse_module(textwrap.dedent(code))
    found: list[cst.CSTNode] = []

    class Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            kinds = (cst.Integer, cst.Float, cst.SimpleString, cst.Name)
            if not found and isinstance(node, kinds) and module.code_for_node(node) == literal:
                found.append(node)
            return True

    module.visit(Find())
    assert found, f"{literal} not in the snippet"
    return FlowIndex(module).verdict(found[0])


TRADING_FLOWS = [
    ("direct sink", "def run(client):\n    client.set_leverage(10)", "10"),
    ("through a local", "def run(client):\n    lev = 10\n    client.set_leverage(lev)", "10"),
    (
        "through arithmetic and a keyword that sizes an order",
        "def run(client, equity):\n    qty = equity * 0.02 / 3\n    client.submit(quantity=qty)",
        "0.02",
    ),
    (
        "through a self attribute read in another method",
        "class Bot:\n    def __init__(self):\n        self._frac = 0.5\n"
        "    def close(self, client, qty):\n        client.create_order(qty=qty * self._frac)",
        "0.5",
    ),
    (
        "through a function of the same module (argument to parameter)",
        "def _place(client, lev):\n    client.set_leverage(lev)\n"
        "def run(client):\n    _place(client, 7)",
        "7",
    ),
    (
        "through a return to the caller",
        "def _lev():\n    return 5\ndef run(client):\n    client.set_leverage(_lev())",
        "5",
    ),
    (
        "a comparison gates an order",
        "def tick(client, z):\n    if z > 2.5:\n        client.create_order('BTCUSDT', 'SELL', 1)",
        "2.5",
    ),
    (
        "an early return gates the order after it",
        "def tick(client, rsi):\n    if rsi > 70:\n        return None\n"
        "    client.create_order('BTCUSDT', 'BUY', 1)",
        "70",
    ),
    (
        "a get fallback flows through",
        "def run(client, cfg):\n    lev = cfg.get('lev', 3)\n    client.set_leverage(lev)",
        "3",
    ),
]


@pytest.mark.parametrize(("code", "literal"), [(c, v) for _, c, v in TRADING_FLOWS],
                         ids=[n for n, _, _ in TRADING_FLOWS])  # fmt: skip
def test_trading_flows_reach_an_order_or_risk_call(code: str, literal: str) -> None:
    verdict = _verdict(code, literal)
    assert verdict.kind == TRADING, verdict
    assert verdict.path[0].node is not None and len(verdict.path) >= 2


DISPLAY_FLOWS = [
    (
        "chart endpoint default symbol",
        "def chart(symbol='BTCUSDT', limit=500):\n"
        "    rows = fetch_klines(symbol, limit=limit)\n"
        "    return render_chart(rows, title=symbol)",
        "'BTCUSDT'",
        {DISPLAY, PLUMBING},
    ),
    (
        "a leverage default used only to render",
        "def _row(pos):\n    lev = pos.get('leverage', 10)\n    return f'{pos.symbol} {lev}x'",
        "10",
        {DISPLAY},
    ),
    (
        "an HTTP query limit",
        "def _klines(symbol, limit=500):\n    limit = min(limit, 2000)\n"
        "    return requests.get(URL, params={'symbol': symbol, 'limit': limit})",
        "2000",
        {PLUMBING},
    ),
    (
        "an indicator overlay on a chart",
        "def _draw(ax, close):\n    ema = close.ewm(span=50).mean()\n    ax.plot(ema * 1.02)",
        "1.02",
        {DISPLAY},
    ),
    ("logging", "def _f(log):\n    x = 0.3\n    log.info('x=%s', x)", "0.3", {DISPLAY}),
]


@pytest.mark.parametrize(
    ("code", "literal", "ends"),
    [(c, v, e) for _, c, v, e in DISPLAY_FLOWS],
    ids=[n for n, *_ in DISPLAY_FLOWS],
)
def test_display_and_plumbing_flows_are_display_only(code: str, literal: str, ends: set) -> None:
    verdict = _verdict(code, literal)
    assert verdict.display_only, verdict
    assert set(verdict.ends) == ends


OPEN_FLOWS = [
    ("a public module constant other modules may import", "MAX_LEV = 10\nprint(MAX_LEV)", "10"),
    ("a public attribute", "class S:\n    def f(self):\n        self.lev = 10", "10"),
    ("a public function's return", "def choose_leverage():\n    return 5", "5"),
    ("a local never read", "def _f():\n    lev = 5", "5"),
]


@pytest.mark.parametrize(("code", "literal"), [(c, v) for _, c, v in OPEN_FLOWS],
                         ids=[n for n, _, _ in OPEN_FLOWS])  # fmt: skip
def test_values_that_leave_the_module_stay_open(code: str, literal: str) -> None:
    verdict = _verdict(code, literal)
    assert verdict.kind == OPEN and not verdict.display_only, verdict


def test_one_trading_path_wins_over_display_paths() -> None:
    code = (
        "def run(client, log):\n    lev = 10\n    log.info('lev %s', lev)\n"
        "    print(f'{lev}x')\n    client.set_leverage(lev)"
    )
    assert _verdict(code, "10").kind == TRADING


def test_main_block_is_not_part_of_the_flow() -> None:
    code = "def _lev():\n    return 5\nif __name__ == '__main__':\n    print(_lev())"
    verdict = _verdict(code, "5")
    assert not verdict.display_only  # the demo print does not make the value display-only


def test_cycles_and_long_chains_end() -> None:
    chain = "\n".join(f"    v{i + 1} = v{i} + v{i + 1}" for i in range(600))
    code = f"def _f(v1):\n    v0 = 3\n{chain}\n    return v600"
    verdict = _verdict(code, "3")
    assert verdict.kind == OPEN  # the search budget ends it; open keeps the finding


# -- the scanner uses reachability ----------------------------------------------------------------
def test_scanner_drops_a_display_only_candidate_and_keeps_the_trading_one() -> None:
    code = """
    def _show(pos):
        leverage = pos.get("leverage", 10)
        return f"{leverage}x"

    def _trade(client, pos):
        leverage = pos.get("leverage", 12)
        client.set_leverage(leverage)
    """
    found = [(f.name, f.value) for f in scan(code)]
    assert ("leverage", "12") in found
    assert ("leverage", "10") not in found


def test_scanner_keeps_an_unnamed_threshold_only_when_it_gates_an_order() -> None:
    gated = "def tick(client, z):\n    if z > 2.5:\n        client.create_order('X', 'SELL', 1)"
    alone = "def tick(log, z):\n    if z > 2.5:\n        log.info('high')"
    assert [(f.rule_id, f.value) for f in scan(gated)] == [("signal-threshold", "2.5")]
    assert scan(alone) == []


# -- --explain -----------------------------------------------------------------------------------
def test_explain_prints_the_path_line_by_line() -> None:
    code = "def run(client):\n    lev = 10\n    client.set_leverage(lev)\n"
    lines = explain(code, 2, 10, "bot.py")
    assert "trading decision" in lines[0]
    assert lines[1].startswith("  bot.py:2: lev = 10")
    assert lines[-1].startswith("  bot.py:3: client.set_leverage(lev)")
    assert "set_leverage" in lines[-1]


def test_explain_refuses_a_place_with_no_value() -> None:
    with pytest.raises(ValueError, match="no value"):
        explain("x = 1\n", 1, 1, "m.py")


def _result(tmp_path, code: str) -> AuditResult:
    from audit.runner import run_audit
    from tests.audit.helpers import CONFIG

    (tmp_path / "bot.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return run_audit([tmp_path], CONFIG, display_root=tmp_path, use_cache=False, jobs=1)


def test_explain_finds_a_finding_by_place_or_fingerprint(tmp_path) -> None:
    result = _result(tmp_path, "def run(client):\n    lev = 10\n    client.set_leverage(lev)\n")
    [finding] = result.findings
    assert select_finding(result.findings, "bot.py:2") == finding
    assert select_finding(result.findings, "bot.py:2:11") == finding
    assert select_finding(result.findings, finding.fingerprint[:8]) == finding
    lines = explain_finding(result, "bot.py:2")
    assert lines[0].startswith("bot.py:2:11: [assign-fallback]")
    assert any("set_leverage" in line for line in lines)
    for query in ("bot.py:9", "nonsense", "bot.py:x"):
        with pytest.raises(LookupError):
            explain_finding(result, query)


def test_cli_explain(tmp_path) -> None:
    """The installed entry point: the path on stdout, a wrong FINDING is one line and exit 2."""
    import os
    import subprocess
    import sys

    (tmp_path / "bot.py").write_text(
        "def run(client):\n    lev = 10\n    client.set_leverage(lev)\n", encoding="utf-8"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "qctl.cli", "audit", "bot.py", "--no-cache", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip

    ok = run("--explain", "bot.py:2")
    assert ok.returncode == 0, ok.stderr
    assert "client.set_leverage(lev)" in ok.stdout and "trading decision" in ok.stdout
    missing = run("--explain", "bot.py:7")
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_continue_in_a_loop_gates_the_order_after_it() -> None:
    code = (
        "def scan(client, rows):\n    for row in rows:\n        if row.rsi > 70:\n            continue\n"
        "        client.create_order(row.symbol, 'BUY', 1)"
    )
    assert _verdict(code, "70").kind == TRADING


def test_a_nested_function_is_not_part_of_the_branch() -> None:
    code = (
        "def _outer(log, z):\n    if z > 2.5:\n        def later(client):\n"
        "            client.create_order('X', 'BUY', 1)\n        log.info('high')"
    )
    assert _verdict(code, "2.5").display_only


def test_explain_gives_the_path_libcst_metadata_gives_on_the_fixture() -> None:
    """`explain` reads positions without MetadataWrapper's visit; on the first finding of every
    file of the demo bot it prints what the plain libcst metadata path prints."""
    from pathlib import Path

    from libcst.metadata import MetadataWrapper, PositionProvider

    from audit.reachability import _literal_at, _trading_path, render_path
    from audit.runner import run_audit
    from tests.audit.helpers import CONFIG

    root = Path(__file__).resolve().parents[2] / "examples" / "legacy_trader"
    result = run_audit([root], CONFIG, display_root=root, use_cache=False, jobs=1)
    first = {f.path: f for f in reversed(result.findings) if not f.is_parse_error}
    assert len(first) > 10
    for finding in first.values():
        source = (root / finding.path).read_text(encoding="utf-8")
        module = cst.parse_module(source)
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        literal = _literal_at(positions, finding.line, finding.column)
        assert literal is not None, finding
        trading = _trading_path(finding.path)
        verdict = FlowIndex(module, trading_file=trading).verdict(literal)
        expected = render_path(verdict, positions, source.splitlines(), finding.path)
        got = explain(source, finding.line, finding.column, finding.path, trading_file=trading)
        assert got == expected
