"""The reachability search grows linearly with the code it reads (issue 12).

Each test counts the work of every verdict in one generated module (the Python and builtin calls
the reachability pass makes, with the profiler hook) at N and at 4N repeated statements. A search
that looked at every use of a name for every literal (the quadratic pass this replaced) made 8.9
to 15 times the calls at 4N on these shapes; a linear one makes 4 times. No clock is read.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

import libcst as cst
import pytest

import audit.reachability as reachability
from audit.reachability import (
    DISPLAY,
    EXPORTED,
    OPEN,
    PLUMBING,
    TRADING,
    FlowIndex,
    Step,
    Verdict,
)
from audit.walk import walk

_SMALL = 250
_LINEAR = 5.0  # the most work 4N may cost against N (linear: 4.0; the quadratic pass: 8.9 to 15)


def _tally(n: int) -> str:
    """The issue's shape: a score summed over many branches."""
    branches = "".join(f"    if a[{i}] > 0:\n        s += 2\n" for i in range(n))
    return f"def score(a):\n    s = 0\n{branches}    return s >= 10\n"


def _reassigned(n: int) -> str:
    """One name assigned thousands of times, each reading it."""
    lines = "".join(f"    size = size * {i + 2}\n" for i in range(n))
    return f"def run(client, qty):\n    size = qty\n{lines}    client.create_order(quantity=size)\n"


def _attribute(n: int) -> str:
    """An attribute updated in thousands of branches."""
    lines = "".join(f"        if x[{i}] > 0:\n            self.score += {i}\n" for i in range(n))
    return (
        f"class Bot:\n    def step(self, x):\n{lines}"
        "    def trade(self, c):\n        c.create_order(qty=self.score)\n"
    )


def _same_named_methods(n: int) -> str:
    """Thousands of classes with a method of one name, each called once."""
    return "".join(
        f"class B{i}:\n    def run(self, lev):\n        print(lev)\ndef go{i}(b):\n    b.run({i})\n"
        for i in range(n)
    )


def _early_exits(n: int) -> str:
    """Thousands of early returns: each gates the rest of one long function."""
    lines = "".join(
        f"    if p[{i}] > {i}:\n        notify({i})\n        return None\n" for i in range(n)
    )
    return f"def run(c, p):\n{lines}    c.refresh(1)\n"


def _work(code: str) -> int:
    """Calls made while indexing the module and judging every number in it."""
    module = cst.parse_module(code)
    numbers: list[cst.CSTNode] = []

    def on_visit(node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Integer):
            numbers.append(node)
        return True

    walk(module, on_visit, lambda node: None, frozenset())
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        index = FlowIndex(module)
        for number in numbers:
            index.verdict(number)
    finally:
        sys.setprofile(previous)
    return calls


@pytest.mark.parametrize(
    "shape", [_tally, _reassigned, _attribute, _same_named_methods, _early_exits]
)
def test_verdicts_grow_linearly(shape: Callable[[int], str], monkeypatch) -> None:
    # a small visit budget keeps the test quick; the work per visit is what is measured
    monkeypatch.setattr(reachability, "_MAX_VISITS", 10)
    small, large = _work(shape(_SMALL)), _work(shape(4 * _SMALL))
    assert large < _LINEAR * small, f"{shape.__name__}: {small} calls at N, {large} at 4N"


def _plain_verdict(index: FlowIndex, literal: cst.CSTNode) -> Verdict:
    """The same breadth-first search written plainly: every flow queued one by one with its
    whole path, no list skipped. Slow, but what the fast search must agree with."""
    start = Step(literal, "the literal")
    queue: deque[tuple[cst.CSTNode, tuple[Step, ...]]] = deque([(literal, (start,))])
    seen: set[int] = set()
    ends: list[tuple[str, tuple[Step, ...]]] = []
    budget = reachability._MAX_VISITS
    while queue:
        node, path = queue.popleft()
        if id(node) in seen:
            continue
        seen.add(id(node))
        budget -= 1
        if budget <= 0:
            ends.append((OPEN, (*path, Step(node, "search budget spent"))))
            break
        hop = index._hop(node)
        for kind, step in hop.ends:
            ends.append((kind, (*path, step)))
            if kind == TRADING:
                return Verdict(TRADING, (*path, step), tuple(sorted({k for k, _ in ends})))
        queue.extend((nxt, (*path, step)) for nxt, step in _all_flows(hop))
    if not ends:
        return Verdict(OPEN, (start, Step(literal, "no use of it in this module")), (OPEN,))
    kinds = tuple(sorted({k for k, _ in ends}))
    shown = next((p for k, p in ends if k in (OPEN, EXPORTED)), ends[0][1])
    opened = OPEN in kinds or EXPORTED in kinds
    kind = OPEN if opened else (DISPLAY if DISPLAY in kinds else PLUMBING)
    return Verdict(kind, shown, kinds)


def _all_flows(hop: object) -> list[tuple[cst.CSTNode, Step]]:
    out: list[tuple[cst.CSTNode, Step]] = []
    for part in hop.flows:  # type: ignore[attr-defined]
        if isinstance(part, tuple):
            nodes, skip, step = part
            out += [(node, step) for node in nodes if node is not skip]
        else:
            out += _all_flows(part)
    return out


_FIXTURE = Path(__file__).resolve().parents[2] / "examples" / "legacy_trader"


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(_tally(450), id="tally"),
        pytest.param(_reassigned(30), id="reassigned"),
        pytest.param(_attribute(30), id="attribute"),
        pytest.param(_same_named_methods(30), id="methods"),
        pytest.param(_early_exits(30), id="early-exits"),
        *(
            pytest.param(path.read_text(encoding="utf-8"), id=path.name)
            for path in sorted(_FIXTURE.rglob("*.py"))
        ),
    ],
)
def test_the_search_agrees_with_a_plain_search(code: str) -> None:
    """Lists read lazily, read once, and paths shared by prefix change no verdict."""
    module = cst.parse_module(code)
    literals = [
        node
        for node in _nodes(module)
        if isinstance(node, cst.Integer | cst.Float | cst.SimpleString | cst.UnaryOperation)
    ]
    assert literals
    index = FlowIndex(module)
    for literal in literals:
        assert index.verdict(literal) == _plain_verdict(index, literal)


def _nodes(module: cst.Module) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    walk(module, lambda node: found.append(node) or True, lambda node: None, frozenset())
    return found
