"""The legacy_trader fixture and its golden expectations agree, without running the auditor.

The golden audit test trusts `legacy_trader_expected.json`; these checks make sure that file
still describes the fixture as it is (values on their lines, snippets present, every number in
the code accounted for) and that the fixture itself is valid, runnable, stdlib-only Python.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "examples" / "legacy_trader"
EXPECTED = json.loads((Path(__file__).parent / "legacy_trader_expected.json").read_text())
DECISIONS = EXPECTED["decisions"]
NON_DECISIONS = EXPECTED["non_decisions"]

CATEGORIES = {
    "leverage",
    "position_sizing",
    "symbol_selection",
    "harvest",
    "kill_score",
    "stop_loss_take_profit",
    "safety_limit",
    "secret",
    "other",
}

# Non-decision kinds the fixture must show at least once, each found by a word of its `why`.
REQUIRED_NON_DECISION_KINDS = {
    "bps conversion": "bps conversion",
    "percent conversion": "percent conversion",
    "ms conversion": "ms conversion",
    "hour conversion": "hour conversion",
    "port": "port",
    "ttl": "TTL",
    "timeout": "timeout",
    "retry count": "retry count",
    "batch size": "batch size",
    "range bound": "range bound",
    "slice": "slice",
    "index": "ind",
    "epsilon": "epsilon",
    "version string": "version string",
    "log text": "log text",
    "message text": "message text",
    "__main__ demo": "__main__ demo block",
    "round(x, 2)": "round(x, 2)",
    "sleep(1)": "sleep(1)",
}

SOURCE_FILES = sorted(
    p for p in FIXTURE.rglob("*.py") if "tests" not in p.relative_to(FIXTURE).parts
)
MODULES = sorted(
    ".".join(p.relative_to(FIXTURE).with_suffix("").parts).removesuffix(".__init__")
    for p in SOURCE_FILES
)


def _rel(path: Path) -> str:
    return path.relative_to(FIXTURE).as_posix()


@functools.cache
def _source(rel_path: str) -> str:
    return (FIXTURE / rel_path).read_text(encoding="utf-8")


def _is_main_guard(node: cst.If) -> bool:
    test = node.test
    return (
        isinstance(test, cst.Comparison)
        and isinstance(test.left, cst.Name)
        and test.left.value == "__name__"
    )


class _Literals(cst.CSTVisitor):
    """Numbers, strings and string collections with their lines, outside `__main__` blocks."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self) -> None:
        self.numbers: list[tuple[int, str]] = []
        self.values_by_line: dict[int, set[str]] = {}
        self._module = cst.Module(body=[])

    def visit_If(self, node: cst.If) -> bool:
        return not _is_main_guard(node)

    def _record(self, node: cst.CSTNode, text: str) -> None:
        line = self.get_metadata(PositionProvider, node).start.line
        self.values_by_line.setdefault(line, set()).add(text)

    def visit_Integer(self, node: cst.Integer) -> None:
        self._record(node, node.value)
        self.numbers.append((self.get_metadata(PositionProvider, node).start.line, node.value))

    def visit_Float(self, node: cst.Float) -> None:
        self._record(node, node.value)
        self.numbers.append((self.get_metadata(PositionProvider, node).start.line, node.value))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._record(node, node.value)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in ("True", "False"):  # a decision switch's fallback (`.get(key, True)`)
            self._record(node, node.value)

    def _collection(self, node: cst.CSTNode) -> None:
        self._record(node, self._module.code_for_node(node))

    visit_List = _collection
    visit_Set = _collection
    visit_Tuple = _collection


@functools.cache
def _literals(rel_path: str) -> _Literals:
    visitor = _Literals()
    MetadataWrapper(cst.parse_module(_source(rel_path))).visit(visitor)
    return visitor


def _lines_with(rel_path: str, snippet: str) -> list[int]:
    return [i for i, line in enumerate(_source(rel_path).splitlines(), 1) if snippet in line]


def _decision_lines(rel_path: str) -> set[int]:
    return {d["line"] for d in DECISIONS if d["path"] == rel_path}


# --- the fixture is valid, runnable, stdlib-only Python -------------------------------------


def test_fixture_has_the_expected_shape():
    modules = [p for p in SOURCE_FILES if p.name != "__init__.py"]
    packages = {p.parent for p in SOURCE_FILES if p.name == "__init__.py"}
    assert 10 <= len(modules) <= 24, [_rel(p) for p in modules]
    assert len(packages) >= 4
    assert (FIXTURE / "README.md").is_file()
    assert (FIXTURE / "tests" / "test_governor.py").is_file()


@pytest.mark.parametrize("path", SOURCE_FILES + sorted((FIXTURE / "tests").glob("*.py")), ids=_rel)
def test_every_file_parses_with_libcst_and_compiles(path: Path):
    source = path.read_text(encoding="utf-8")
    module = cst.parse_module(source)
    assert module.code == source
    compile(source, str(path), "exec")


def _run_stdlib_only(code: str) -> subprocess.CompletedProcess:
    """Run `code` with no site-packages (-S), no environment (-I) and no bytecode files (-B)."""
    prelude = f"import sys; sys.path.insert(0, {str(FIXTURE)!r}); "
    return subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=FIXTURE,
    )


def test_every_module_imports_with_the_standard_library_only():
    done = _run_stdlib_only(
        "import importlib\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")


def test_the_fixture_own_tests_pass_with_the_standard_library_only():
    done = _run_stdlib_only(
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('t', 'tests/test_governor.py')\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "names = [n for n in dir(mod) if n.startswith('test_')]\n"
        "for n in names:\n"
        "    getattr(mod, n)()\n"
        "print('passed', len(names))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "passed 6"


DEMO_MODULES = [
    m
    for m, p in zip(MODULES, SOURCE_FILES, strict=True)
    if any(
        isinstance(s, cst.If) and _is_main_guard(s) for s in cst.parse_module(p.read_text()).body
    )
]


@pytest.mark.parametrize("module", DEMO_MODULES)
def test_every_main_demo_runs(module: str):
    done = _run_stdlib_only(f"import runpy; runpy.run_module({module!r}, run_name='__main__')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


# --- the golden expectations describe the fixture as it is ----------------------------------


def test_expectations_are_well_formed():
    assert 60 <= len(DECISIONS) <= 160
    for entry in DECISIONS:
        assert set(entry) <= {"path", "line", "scope", "name", "value", "category", "severity"}
        assert entry["category"] in CATEGORIES, entry
        assert not entry["path"].startswith("tests/"), entry
        assert (FIXTURE / entry["path"]).is_file(), entry
        if "severity" in entry:
            assert entry["category"] == "safety_limit", entry
    for entry in NON_DECISIONS:
        assert set(entry) == {"path", "snippet", "why"}
        assert not entry["path"].startswith("tests/"), entry
        assert entry["snippet"] and entry["why"], entry


def test_every_category_is_exercised():
    assert {d["category"] for d in DECISIONS} == CATEGORIES


def test_decisions_are_unique_like_baseline_fingerprints():
    """The auditor's baseline keys on (path, scope, name, category, value): no two may collide."""
    keys = Counter((d["path"], d["scope"], d["name"], d["category"], d["value"]) for d in DECISIONS)
    assert [k for k, n in keys.items() if n > 1] == []


@pytest.mark.parametrize("entry", DECISIONS, ids=lambda d: f"{d['path']}:{d['line']}:{d['name']}")
def test_decision_value_is_a_literal_on_its_line(entry: dict):
    """`value` is the literal's source text exactly as libcst shows it, on the line given."""
    lines = _source(entry["path"]).splitlines()
    assert entry["value"] in lines[entry["line"] - 1]
    found = _literals(entry["path"]).values_by_line.get(entry["line"], set())
    assert entry["value"] in found, (entry, sorted(found))


def test_safety_limits_are_declared_and_one_is_looser_than_the_owner():
    limits = [d for d in DECISIONS if d["category"] == "safety_limit"]
    assert {d["name"] for d in limits} == set(EXPECTED["safety_limit_names"])
    assert all("severity" in d for d in limits)
    errors = [d for d in limits if d["severity"] == "error"]
    assert [(d["name"], d["value"]) for d in errors] == [("MAX_TOTAL_EXPOSURE_PCT", "300.0")]
    owner_ceiling = {
        "MAX_LEVERAGE_HARD_CAP": 125,
        "MAX_POSITION_SIZE_PCT": 50,
        "MAX_TOTAL_EXPOSURE_PCT": 200,
    }
    for d in limits:
        value = float(d["value"])
        if d["name"] == "MIN_MARGIN_RATIO_PCT":
            looser = value < 10
        else:
            looser = value > owner_ceiling[d["name"]]
        assert looser == (d["severity"] == "error"), d


@pytest.mark.parametrize("entry", NON_DECISIONS, ids=lambda d: f"{d['path']}:{d['snippet'][:30]}")
def test_non_decision_snippet_occurs_on_lines_without_a_decision(entry: dict):
    lines = _lines_with(entry["path"], entry["snippet"])
    assert lines, entry
    assert not set(lines) & _decision_lines(entry["path"]), entry


def test_every_required_non_decision_kind_is_present():
    whys = " | ".join(e["why"] for e in NON_DECISIONS)
    missing = [kind for kind, word in REQUIRED_NON_DECISION_KINDS.items() if word not in whys]
    assert missing == []


@pytest.mark.parametrize("path", SOURCE_FILES, ids=_rel)
def test_every_number_in_the_code_is_accounted_for(path: Path):
    """Each numeric literal outside `__main__` is a listed decision or on a listed non-decision line."""
    rel = _rel(path)
    decided = {(d["line"], d["value"]) for d in DECISIONS if d["path"] == rel}
    excused = {
        line for e in NON_DECISIONS if e["path"] == rel for line in _lines_with(rel, e["snippet"])
    }
    unaccounted = [
        (line, value)
        for line, value in _literals(rel).numbers
        if (line, value) not in decided and line not in excused
    ]
    assert unaccounted == []
