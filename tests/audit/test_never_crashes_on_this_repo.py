"""Every Python file of this repository scans without an internal error.

Real code holds shapes a grammar fuzzer rarely writes: `ids=["missing", "nan", ...]` in a pytest
parametrize made a rule read the string "nan" as a bar offset and crash the scan of the file
(reported as "could not parse")."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan import scan_source
from tests.audit.helpers import CONFIG

REPO = Path(__file__).resolve().parents[2]
FILES = sorted(
    p
    for p in REPO.rglob("*.py")
    if not {".venv", "node_modules", ".git", "build"} & set(p.relative_to(REPO).parts)
)


def test_the_repository_has_python_files_to_scan() -> None:
    assert len(FILES) > 100


def test_every_file_of_this_repository_scans() -> None:
    failed = []
    for path in FILES:
        rel = path.relative_to(REPO).as_posix()
        try:
            scan_source(path.read_text("utf-8"), rel, CONFIG)
        except Exception as exc:  # noqa: BLE001 - the test lists every file that fails
            failed.append(f"{rel}: {exc.__class__.__name__}: {exc}")
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", " NaN "])
def test_non_finite_number_strings_near_bars_and_stops(text: str) -> None:
    source = (
        f'ids = ["{text}"]\n'
        f'stop_price = candles[idx - "{text}"]["low"]\n'
        f'stop = df["low"].iloc["{text}"]\n'
    )
    scan_source(source, "bot/strategy.py", CONFIG)
