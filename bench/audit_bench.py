"""Benchmark `qctl audit` against the tools a team would otherwise reach for, in one run.

Builds a tree of N copies of examples/legacy_trader (default 150 copies, ~2,000 files) in a
temporary folder, then times, on the same tree:
  - qctl audit, cold (no cache), with 1 worker and with every CPU;
  - qctl audit, warm (content-hash cache, nothing changed);
  - `ruff check --select PLR2004` (ruff's magic-value-in-comparison rule: the closest linter rule);
  - `grep -rnE` for numeric literals (what grep-based "proof" scripts do).
Prints wall time, files per second and the ratio to qctl cold. It also prints how many of the
fixture's expected decisions each tool's output touches, because speed without recall is cheap.

Run: .venv/bin/python bench/audit_bench.py [--copies 150]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "examples" / "legacy_trader"
sys.path.insert(0, str(REPO))

from audit.config import load_config  # noqa: E402
from audit.runner import run_audit  # noqa: E402
from qctl.audit_cmd import reference_limits  # noqa: E402


def build_tree(root: Path, copies: int) -> int:
    for i in range(copies):
        shutil.copytree(
            FIXTURE, root / f"svc{i:04d}", ignore=shutil.ignore_patterns("__pycache__", "qctl.toml")
        )
    return sum(1 for _ in root.rglob("*.py"))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def expected_lines() -> set[tuple[str, int]]:
    data = json.loads((REPO / "tests" / "audit" / "legacy_trader_expected.json").read_text())
    return {(d["path"], d["line"]) for d in data["decisions"]}


def recall(lines: set[tuple[str, int]]) -> float:
    want = expected_lines()
    return len(want & lines) / len(want)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=150)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qctl-audit-bench-") as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        files = build_tree(root, args.copies)
        config = replace(load_config(None, root=root), reference_limits=reference_limits())
        cache = Path(tmp) / "cache"
        cpus = os.cpu_count() or 1
        print(
            f"tree: {files:,} Python files ({args.copies} copies of examples/legacy_trader), {cpus} CPUs"
        )

        rows = []
        t1, _ = timed(lambda: run_audit([root], config, display_root=root, use_cache=False, jobs=1))
        rows.append(("qctl audit, cold, 1 worker", t1))
        tn, cold = timed(
            lambda: run_audit([root], config, display_root=root, cache_dir=cache, jobs=cpus)
        )
        rows.append((f"qctl audit, cold, {cpus} workers", tn))
        tw, warm = timed(
            lambda: run_audit([root], config, display_root=root, cache_dir=cache, jobs=cpus)
        )
        assert warm.files_from_cache == files, "warm run must come entirely from the cache"
        rows.append(("qctl audit, warm cache", tw))

        ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
        cmd = [
            ruff,
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "PLR2004",
            "--output-format",
            "json",
            str(root),
        ]
        tr, proc = timed(lambda: subprocess.run(cmd, capture_output=True, text=True))
        rows.append(("ruff check --select PLR2004", tr))
        ruff_hits = json.loads(proc.stdout or "[]")

        grep = ["grep", "-rnE", "--include=*.py", r"[^A-Za-z_][0-9]+(\.[0-9]+)?", str(root)]
        tg, gproc = timed(lambda: subprocess.run(grep, capture_output=True, text=True))
        rows.append(("grep -rnE numeric literals", tg))

        first = root / "svc0000"

        def lines_of(pairs: list[tuple[str, int]]) -> set[tuple[str, int]]:
            out = set()
            for path, line in pairs:
                p = Path(path)
                if p.is_absolute() and p.is_relative_to(first):
                    out.add((p.relative_to(first).as_posix(), line))
                elif path.startswith("svc0000/"):
                    out.add((path[len("svc0000/") :], line))
            return out

        qctl_lines = lines_of([(f.path, f.line) for f in cold.findings])
        ruff_lines = lines_of([(h["filename"], h["location"]["row"]) for h in ruff_hits])
        grep_pairs = []
        for line in gproc.stdout.splitlines():
            path, lineno, _ = line.split(":", 2)
            grep_pairs.append((path, int(lineno)))
        grep_lines = lines_of(grep_pairs)
        grep_total = len(grep_pairs) // args.copies

        print(f"\n{'tool':38} {'seconds':>9} {'files/s':>10} {'speed vs qctl cold, all CPUs':>30}")
        for name, secs in rows:
            print(f"{name:38} {secs:9.3f} {files / secs:10,.0f} {tn / secs:29.2f}x")
        print(
            "\nrecall of the fixture's 97 expected decisions (share of their lines each tool reports):"
        )
        print(
            f"  qctl audit: {recall(qctl_lines):.0%} ({len(cold.findings) // args.copies} findings per copy)"
        )
        print(
            f"  ruff PLR2004: {recall(ruff_lines):.0%} ({len(ruff_hits) // args.copies} hits per copy)"
        )
        print(
            f"  grep: {recall(grep_lines):.0%} ({grep_total} matching lines per copy, no categories)"
        )


if __name__ == "__main__":
    main()
