"""Running over a tree: bad input becomes parse-error entries, the cache is exact, workers agree."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from audit.finding import PARSE_ERROR_RULE
from audit.runner import read_source, run_audit
from tests.audit.helpers import CONFIG


def _config(root: Path, **kw: object):
    return replace(CONFIG, root=str(root), **kw)


def _errors(result) -> dict[str, str]:
    return {f.path: f.message for f in result.findings if f.rule_id == PARSE_ERROR_RULE}


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_bad_inputs_become_entries_and_the_rest_is_audited(tmp_path: Path) -> None:
    _write(tmp_path / "good.py", "LEVERAGE = 10\n")
    _write(tmp_path / "syntax.py", "def f(:\n    pass\n")
    _write(tmp_path / "py2.py", 'print "hello"\nexcept Exception, e:\n')
    _write(
        tmp_path / "latin1_declared.py",
        "# -*- coding: latin-1 -*-\nNOTE = 'caf\xe9'\nLEVERAGE = 5\n".encode("latin-1"),
    )
    _write(tmp_path / "latin1_undeclared.py", "NOTE = 'caf\xe9'\nLEVERAGE = 5\n".encode("latin-1"))
    _write(tmp_path / "binary.py", b"\x7fELF\x00\x01\x02\x03")
    _write(tmp_path / "empty.py", "")
    _write(tmp_path / "huge.py", "X = 1\n" * 200)
    os.symlink(tmp_path / "loop_b.py", tmp_path / "loop_a.py")
    os.symlink(tmp_path / "loop_a.py", tmp_path / "loop_b.py")
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    (tmp_path / "sub").mkdir()
    os.symlink(
        tmp_path, tmp_path / "sub" / "back_to_top"
    )  # a directory loop must not hang the walk

    result = run_audit(
        [tmp_path], _config(tmp_path, max_file_bytes=1000), use_cache=False, display_root=tmp_path
    )
    errors = _errors(result)
    assert "syntax error" in errors["syntax.py"]
    assert "Python 2" in errors["py2.py"]
    assert "latin1_declared.py" not in errors
    assert (
        "utf-8" in errors["latin1_undeclared.py"]
        and "coding line" in errors["latin1_undeclared.py"]
    )
    assert "binary" in errors["binary.py"]
    assert "too large" in errors["huge.py"]
    assert "symlink loop" in errors["loop_a.py"] and "symlink loop" in errors["loop_b.py"]
    assert "cannot read" in errors["dangling.py"]
    assert "empty.py" not in errors
    found = {(f.path, f.name) for f in result.findings if f.rule_id != PARSE_ERROR_RULE}
    assert found == {("good.py", "LEVERAGE"), ("latin1_declared.py", "LEVERAGE")}


def test_unreadable_file_is_an_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _write(tmp_path / "secret_perms.py", "LEVERAGE = 10\n")
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == target.name:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    result = run_audit([tmp_path], _config(tmp_path), use_cache=False, display_root=tmp_path)
    assert "Permission denied" in _errors(result)["secret_perms.py"]


def test_missing_path_is_reported(tmp_path: Path) -> None:
    result = run_audit(
        [tmp_path / "nope"], _config(tmp_path), use_cache=False, display_root=tmp_path
    )
    assert "no such file" in _errors(result)["nope"]


def test_pep263_and_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "bom.py", "\ufeffLEVERAGE = 3\n".encode())
    text, _, error = read_source(path, 10_000)
    assert error == "" and text == "LEVERAGE = 3\n"


def test_cache_is_used_and_invalidated_exactly(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src / "a.py", "LEVERAGE = 10\n")
    _write(src / "b.py", "T1_R = 2.0\n")
    cache = tmp_path / "cache"
    config = _config(tmp_path)
    first = run_audit([src], config, cache_dir=cache, display_root=tmp_path)
    assert first.files_from_cache == 0
    second = run_audit([src], config, cache_dir=cache, display_root=tmp_path)
    assert second.files_from_cache == 2
    assert [f.to_dict() for f in second.findings] == [f.to_dict() for f in first.findings]

    _write(src / "a.py", "LEVERAGE = 20\n")
    third = run_audit([src], config, cache_dir=cache, display_root=tmp_path)
    assert third.files_from_cache == 1
    assert {f.value for f in third.findings} == {"20", "2.0"}

    other_config = replace(config, vocabulary={"harvest": ["wobble"]})
    assert (
        run_audit([src], other_config, cache_dir=cache, display_root=tmp_path).files_from_cache == 0
    )
    assert (
        run_audit(
            [src], config, cache_dir=cache, use_cache=False, display_root=tmp_path
        ).files_from_cache
        == 0
    )


def test_corrupt_cache_is_a_cold_cache(tmp_path: Path) -> None:
    _write(tmp_path / "src" / "a.py", "LEVERAGE = 10\n")
    cache = tmp_path / "cache"
    _write(cache / "audit-v1.json", "{not json")
    result = run_audit(
        [tmp_path / "src"], _config(tmp_path), cache_dir=cache, display_root=tmp_path
    )
    assert [f.name for f in result.findings] == ["LEVERAGE"]


def test_parallel_matches_serial(tmp_path: Path) -> None:
    for i in range(60):
        _write(
            tmp_path / "pkg" / f"m{i:02d}.py",
            f"LEVERAGE = {i + 2}\nPORT = 80{i:02d}\ndef f(:\n"
            if i == 7
            else f"LEVERAGE = {i + 2}\nPORT = 80{i:02d}\n",
        )
    config = _config(tmp_path)
    serial = run_audit([tmp_path], config, use_cache=False, jobs=1, display_root=tmp_path)
    parallel = run_audit([tmp_path], config, use_cache=False, jobs=2, display_root=tmp_path)
    assert [f.to_dict() for f in parallel.findings] == [f.to_dict() for f in serial.findings]
    assert len(serial.findings) == 60  # 59 leverage values + 1 parse error


def test_include_exclude_and_tests(tmp_path: Path) -> None:
    _write(tmp_path / "app" / "core.py", "LEVERAGE = 10\n")
    _write(tmp_path / "app" / "vendor" / "lib.py", "LEVERAGE = 11\n")
    _write(tmp_path / "tests" / "test_core.py", "LEVERAGE = 12\n")
    _write(tmp_path / ".venv" / "x.py", "LEVERAGE = 13\n")
    config = _config(tmp_path, exclude=("app/vendor/**",))
    result = run_audit([tmp_path], config, use_cache=False, display_root=tmp_path)
    assert {(f.value, f.is_test) for f in result.findings} == {("10", False), ("12", True)}
    excluded = run_audit(
        [tmp_path], replace(config, tests="exclude"), use_cache=False, display_root=tmp_path
    )
    assert {f.value for f in excluded.findings} == {"10"}
    only_app = run_audit(
        [tmp_path],
        replace(config, include=("app/**/*.py",)),
        use_cache=False,
        display_root=tmp_path,
    )
    assert {f.value for f in only_app.findings} == {"10"}


def test_a_warm_run_reads_one_cache_index_and_never_loads_the_parser(tmp_path: Path) -> None:
    import subprocess
    import sys

    for i in range(5):
        _write(tmp_path / "src" / f"m{i}.py", f"LEVERAGE_{i} = {i + 2}\n")
    cache = tmp_path / "cache"
    script = (
        "import sys; from pathlib import Path\n"
        "from audit.runner import run_audit; from audit.config import AuditConfig as CONFIG\n"
        f"root = Path({str(tmp_path)!r})\n"
        "r = run_audit([root / 'src'], CONFIG(root=str(root)), display_root=root,"
        f" cache_dir=Path({str(cache)!r}))\n"
        "print(r.files_from_cache, len(r.findings), 'libcst' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parents[2]

    def run() -> str:
        proc = subprocess.run(
            [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert run() == ["0", "5", "True"]  # cold: parsed
    assert sorted(p.name for p in cache.iterdir()) == [".gitignore", "audit-v1.json"]
    assert run() == ["5", "5", "False"]  # warm: one index, no parser


_WALK_SOURCES = sorted(
    p
    for folder in ("audit", "examples/legacy_trader", "engine/core")
    for p in (Path(__file__).resolve().parents[2] / folder).rglob("*.py")
)
_ODD_SYNTAX = """
@deco(1, key="v")
async def f(a, /, b: int = 2, *args, c=3, **kw) -> "T":
    x = [i async for i in g() if i]; y = {k: v for k, v in kw.items()}
    async with a as (b, c), d:
        await x
    match y:
        case {"k": [1, *rest]} | Point(x=0) if rest:
            pass
        case _:
            return f"{x!r:>{width}} {y=}" "tail"
    try:
        del x[1:2, ::3]
    except (ValueError, TypeError) as e:
        raise e from None
    finally:
        pass
    return (1 if a else -2) @ b ** ~c, lambda q=(1,): q
"""


def test_the_read_only_walk_meets_nodes_in_libcst_visit_order() -> None:
    """audit.walk replaces `module.visit`: the same callbacks, the same nodes, the same order."""
    import libcst as cst

    from audit.walk import descendants, walk

    class Recorder(cst.CSTVisitor):
        def __init__(self, prune: bool) -> None:
            super().__init__()
            self.prune = prune
            self.events: list[tuple[str, int]] = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            self.events.append(("visit", id(node)))
            return not (self.prune and isinstance(node, cst.Decorator | cst.Lambda))

        def on_leave(self, node: cst.CSTNode) -> None:
            self.events.append(("leave", id(node)))

    sources = [_ODD_SYNTAX] + [p.read_text("utf-8") for p in _WALK_SOURCES]
    assert len(sources) > 20
    for source in sources:
        module = cst.parse_module(source)
        for prune in (False, True):
            expected, got = Recorder(prune), Recorder(prune)
            module.visit(expected)
            walk(module, got.on_visit, got.on_leave)
            assert got.events == expected.events
        everything = Recorder(prune=False)
        module.visit(everything)
        visits = [i for kind, i in everything.events if kind == "visit"]
        assert [id(n) for n in descendants(module)] == visits


_POSITION_CASES = [
    _ODD_SYNTAX,
    "class Bot:\n    SYMBOLS = [\n        'BTCUSDT',  # main\n        'ETHUSDT',\n    ]\n",
    "def f():\n\tif x:\n\t\treturn (  # why\n\t\t\t-0.5\n\t\t)\r\n\ty = {'a': (1,\r\n\t\t2)}\r\n",
    "s = 'ß' ; t = f'{ß!r}{True}' 'x1'; u = ß1 * 1 + x1.real\nv = b'\\x00' if None else 1e-3\n",
    'def g():\n    """1 2 3"""\n    # 4\n    return [\n        x1 for x1 in (1,\n                      2)\n    ]\n',
]


def test_positions_read_off_the_source_equal_libcst_positions() -> None:
    """The scanner places findings without a code-generation pass: the same ranges as libcst."""
    import libcst as cst

    from audit.scan import _POSITIONED, _literal_positions, all_positions
    from audit.walk import descendants

    sources = _POSITION_CASES + [p.read_text("utf-8") for p in _WALK_SOURCES]
    placed = 0
    for source in sources:
        module = cst.parse_module(source)
        expected = all_positions(module)
        nodes = [n for n in descendants(module) if type(n) in _POSITIONED]
        for node in nodes:
            got = _literal_positions(module, source, [node])
            if got is None:  # no number, string or True/False/None inside: libcst places it
                continue
            assert got[node] == expected[node], (source[:40], cst.Module([]).code_for_node(node))
            placed += 1
        literals = [n for n in nodes if isinstance(n, cst.BaseNumber | cst.SimpleString)]
        together = _literal_positions(module, source, literals)
        assert together == {n: expected[n] for n in literals}
    assert placed > 1000


def test_indexed_vocabulary_matching_equals_a_scan_of_every_phrase() -> None:
    from audit.vocabulary import Match, Vocabulary, words

    def contains(seq: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
        return any(seq[i : i + len(phrase)] == phrase for i in range(len(seq) - len(phrase) + 1))

    def scan_all(vocab: Vocabulary, name: str) -> Match:
        seq = words(name)
        if not seq:
            return Match()
        best = None
        for strength, table in ((1, vocab.strong), (0, vocab.weak)):
            for cat, phrases in table.items():
                for phrase in phrases:
                    if contains(seq, phrase) and (
                        best is None or (strength, len(phrase)) > best[:2]
                    ):
                        best = (strength, len(phrase), cat)
        neutral = any(contains(seq, p) for p in vocab.neutral)
        generic = any(contains(seq, p) for p in vocab.generic)
        indicator = any(contains(seq, p) for p in vocab.indicators)
        if best is None:
            return Match(generic=generic, neutral=neutral, indicator=indicator and not neutral)
        if neutral and not best[0]:
            return Match(generic=generic, neutral=True)
        return Match(best[2], bool(best[0]), best[1], generic, neutral, indicator)

    import re

    names = {"", "__", "MAX_NOTIONAL_PER_TRADE_USDT", "T1_R", "kSL", "harvestTheta2"}
    for path in _WALK_SOURCES:
        names |= set(re.findall(r"[A-Za-z_]\w*", path.read_text("utf-8")))
    extra = {"kill_score": {"strong": ["wobble_guard"]}, "generic": ["foo_bar"], "neutral": ["lev"]}
    for vocab in (Vocabulary.load(), Vocabulary.load(extra)):
        assert all(vocab.match(n) == scan_all(vocab, n) for n in sorted(names))


def test_json_layout_is_json_dumps_text() -> None:
    """`--format json` is json's own two-space layout."""
    import json

    from audit.formats import render_json
    from audit.runner import AuditResult
    from tests.audit.helpers import scan

    findings = scan("LEVERAGE = 10\nSYMBOLS = ['BTCUSDT', 'ETHUSDT']\n")
    result = AuditResult(findings=findings, files_scanned=1, root="/r")
    text = render_json(result)
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
