"""Benchmark `qctl audit` against the parse floor and the tools a team would otherwise use, in one run.

Builds a tree in a temporary folder: N copies of examples/legacy_trader (default 30) plus, with
`--plumbing` (the default), one copy each of a few installed libraries that hold no trading
decisions (rich, click, jinja2, attr), as a real bot repository also holds plumbing. On that
tree, in one run, it times:
  - the parse floor: bare `libcst.parse_module` of every file, 1 process and one per CPU;
  - qctl audit, cold (no cache), 1 worker and one per CPU, printed as a ratio to the floor;
  - qctl audit, warm (one cache index, nothing changed), in-process and as the `qctl` command;
  - `ruff check --select PLR2004` and `grep -rnE` for numeric literals;
  - `qctl --help` start-up against a bare `python -c pass`.
Every figure is printed with the load average, because the machine is shared. It also prints how
many of the fixture's expected decisions each tool's output touches (speed without recall is cheap)
and how many files the pre-filter skips.

Run: .venv/bin/python bench/audit_bench.py [--copies 30] [--no-plumbing]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "examples" / "legacy_trader"
sys.path.insert(0, str(REPO))

from audit.config import load_config  # noqa: E402
from audit.runner import run_audit  # noqa: E402
from qctl.audit_cmd import reference_limits  # noqa: E402

PLUMBING = ("rich", "click", "jinja2", "attr")


def build_tree(root: Path, copies: int, plumbing: bool) -> tuple[int, int]:
    """(demo files, plumbing files) written under `root`."""
    for i in range(copies):
        shutil.copytree(
            FIXTURE, root / f"svc{i:04d}", ignore=shutil.ignore_patterns("__pycache__", "qctl.toml")
        )
    demo = sum(1 for _ in root.rglob("*.py"))
    if plumbing:
        import importlib

        for name in PLUMBING:
            package = Path(importlib.import_module(name).__file__).parent
            shutil.copytree(
                package, root / "vendor" / name, ignore=shutil.ignore_patterns("__pycache__")
            )
    return demo, sum(1 for _ in root.rglob("*.py")) - demo


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker pools are joined)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _parse_one(path: str) -> None:
    import libcst

    libcst.parse_module(Path(path).read_text("utf-8"))


def parse_floor(paths: list[str], workers: int) -> None:
    """What any libcst-based auditor pays at least: read and parse every file, nothing else."""
    if workers <= 1:
        for path in paths:
            _parse_one(path)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_parse_one, paths, chunksize=16))


def command_seconds(cmd: list[str], runs: int = 5, **kw: object) -> float:
    """Median wall time of a command (a fresh process each run)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False, **kw)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--no-plumbing", dest="plumbing", action="store_false")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qctl-audit-bench-") as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        demo, plumbing = build_tree(root, args.copies, args.plumbing)
        files = demo + plumbing
        paths = sorted(str(p) for p in root.rglob("*.py"))
        config = replace(load_config(None, root=root), reference_limits=reference_limits())
        cache = Path(tmp) / "cache"
        cpus = os.cpu_count() or 1
        print(
            f"tree: {files:,} Python files ({args.copies} copies of examples/legacy_trader = {demo:,}"
            f" files, {plumbing:,} plumbing files from {', '.join(PLUMBING) if plumbing else '-'}),"
            f" {cpus} CPUs, {load()}"
        )
        from audit.prefilter import Prefilter
        from audit.runner import precheck

        prefilter = Prefilter(config)
        skipped = 0
        for path in paths:
            text = Path(path).read_text("utf-8")
            if precheck(text, config)[1] and not prefilter.may_hold_findings(text, path):
                skipped += 1
        print(
            f"pre-filter: {skipped:,} of {files:,} files cannot hold a finding and are not parsed"
        )

        rows: list[tuple[str, float, float | None, str]] = []
        cpu: dict[str, float] = {}

        def row(name: str, fn) -> tuple[float, object]:  # noqa: ANN001
            before = cpu_seconds()
            secs, out = timed(fn)
            cpu[name] = cpu_seconds() - before
            rows.append((name, secs, cpu[name], load()))
            return secs, out

        floor1, _ = row("libcst parse floor, 1 process", lambda: parse_floor(paths, 1))
        floorn, _ = row(f"libcst parse floor, {cpus} processes", lambda: parse_floor(paths, cpus))
        t1, _ = row(
            "qctl audit, cold, 1 worker",
            lambda: run_audit([root], config, display_root=root, use_cache=False, jobs=1),
        )
        tn, cold = row(
            f"qctl audit, cold, {cpus} workers",
            lambda: run_audit([root], config, display_root=root, cache_dir=cache, jobs=cpus),
        )
        tw, warm = row(
            "qctl audit, warm cache (in-process)",
            lambda: run_audit([root], config, display_root=root, cache_dir=cache, jobs=cpus),
        )
        assert warm.files_from_cache == files, "warm run must come entirely from the cache"
        qctl = str(Path(sys.executable).parent / "qctl")
        warm_cli = [qctl, "audit", str(root), "--format", "json", "--cache-dir", str(cache)]
        twc = command_seconds(warm_cli, runs=3, cwd=tmp)
        rows.append(("qctl audit, warm cache (the command)", twc, None, load()))

        ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
        cmd = [ruff, "check", "--no-cache", "--isolated", "--select", "PLR2004"]
        cmd += ["--output-format", "json", str(root)]
        _tr, proc = row(
            "ruff check --select PLR2004",
            lambda: subprocess.run(cmd, capture_output=True, text=True),
        )
        ruff_hits = json.loads(proc.stdout or "[]")
        grep = ["grep", "-rnE", "--include=*.py", r"[^A-Za-z_][0-9]+(\.[0-9]+)?", str(root)]
        _tg, gproc = row(
            "grep -rnE numeric literals",
            lambda: subprocess.run(grep, capture_output=True, text=True),
        )

        help_s = command_seconds([qctl, "--help"])
        bare_s = command_seconds([sys.executable, "-c", "pass"])
        help_load = load()

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
        grep_per_copy = len(lines_of(grep_pairs)) if grep_pairs else 0

        print(f"\n{'what':40} {'seconds':>9} {'CPU s':>8} {'files/s':>10} {'load':>10}")
        for name, secs, used, when in rows:
            used_text = f"{used:8.2f}" if used is not None else f"{'-':>8}"
            print(f"{name:40} {secs:9.3f} {used_text} {files / secs:10,.0f} {when:>10}")
        c1 = cpu["qctl audit, cold, 1 worker"] / cpu["libcst parse floor, 1 process"]
        print("\nratios (same run; CPU seconds are steadier than wall time on a shared machine):")
        print(f"  cold, 1 worker / parse floor, 1 process:     {t1 / floor1:5.2f}x (CPU {c1:.2f}x)")
        print(f"  cold, {cpus} workers / parse floor, {cpus} processes: {tn / floorn:5.2f}x")
        print(f"  warm (the command) / cold, {cpus} workers:        {twc / tn:5.2f}x")
        print(
            f"  qctl --help {help_s:.3f} s / python -c pass {bare_s:.3f} s: {help_s / bare_s:5.2f}x ({help_load})"
        )
        print(
            f"  qctl cold, {cpus} workers / ruff PLR2004: {tn / _tr:5.0f}x;  / grep: {tn / _tg:5.0f}x"
        )
        expected = len(expected_lines())
        print(
            f"\nrecall of the fixture's {expected} expected decisions (share of their lines each tool reports):"
        )
        print(f"  qctl audit: {recall(qctl_lines):.0%}")
        print(f"  ruff PLR2004: {recall(ruff_lines):.0%}")
        print(
            f"  grep: {recall(grep_lines):.0%} ({grep_per_copy} matching lines per copy of the demo, no categories)"
        )


if __name__ == "__main__":
    main()
