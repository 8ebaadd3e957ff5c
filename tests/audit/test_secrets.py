"""Secrets: decided by the name and the value's shape and entropy (never by case), and redacted
without anything derived from the value, so no output, cache or baseline carries it."""

from __future__ import annotations

import json
import shutil

import pytest

from audit.baseline import load_baseline, write_baseline
from audit.finding import Category, Severity
from audit.formats import render
from audit.runner import CACHE_DIR_NAME, run_audit
from tests.audit.helpers import CONFIG, scan

SECRETS = [
    ("upper-case access key", 'API_KEY = "AKIA4Q2ZR7XK9PLM3VBN"', "AKIA4Q2ZR7XK9PLM3VBN"),
    (
        "64-character exchange key",
        'BINANCE_SECRET = "vK3nR8qLw2Ztb9XyF4mPd7Hs1JcE6uGa0QoTiBn5YeWrMk2VfLh8DxUpSz3NjCq7"',
        "vK3nR8qLw2Ztb9XyF4mPd7Hs1JcE6uGa0QoTiBn5YeWrMk2VfLh8DxUpSz3NjCq7",
    ),
    (
        "hex secret",
        'api_secret = "9f86d081884c7d659a2feaa0c55ad015"',
        "9f86d081884c7d659a2feaa0c55ad015",
    ),
    (
        "keyword argument",
        'client = Client(api_key="Q7XK2ZR9PLM3VBN4AKIA")',
        "Q7XK2ZR9PLM3VBN4AKIA",
    ),
    (
        "environment default",
        'import os\nKEY = os.getenv("EXCHANGE_API_KEY", "Zq81nVb7Kd02LmPqX")',
        "Zq81nVb7Kd02LmPqX",
    ),
    (
        "upper-case env-shaped value with many digits",
        'API_KEY = "AK_4Q2Z_R7X9_83M3"',
        "AK_4Q2Z_R7X9_83M3",
    ),
]


@pytest.mark.parametrize(("code", "secret"), [(c, s) for _, c, s in SECRETS],
                         ids=[n for n, _, _ in SECRETS])  # fmt: skip
def test_secret_is_reported_and_redacted(code: str, secret: str) -> None:
    [finding] = [f for f in scan(code) if f.category is Category.SECRET]
    assert finding.severity is Severity.ERROR
    assert finding.value == f"<redacted {len(secret)} chars>"
    text = json.dumps(finding.to_dict())
    for i in range(len(secret) - 3):
        assert secret[i : i + 4] not in text  # not even a fragment


NOT_SECRETS = [
    ("env var name passed to getenv", 'import os\nAPI_KEY = os.getenv("BINANCE_API_KEY")'),
    ("env var name as a constant", 'API_KEY_ENV = "BINANCE_API_KEY"'),
    ("env var name with a version", 'API_KEY_VAR = "BINANCE_API_KEY_V2"'),
    ("environ lookup", 'import os\nAPI_SECRET = os.environ["BINANCE_API_SECRET"]'),
    ("placeholder", 'API_SECRET = "your-api-secret-here"\npassword = "changeme"'),
    ("empty", 'password = ""'),
    ("a label", 'SECRET_LABEL = "credential"'),
    ("a sentence", 'api_key_help = "Set the API key in the environment"'),
    ("a number", "API_KEY_LENGTH = 64"),
    (
        "readable words of a local fake",
        'DEFAULT_API_KEY = "qctl-sim-key"\nDEFAULT_SECRET = "Paper-Trading-Secret"',
    ),
]


@pytest.mark.parametrize("code", [c for _, c in NOT_SECRETS], ids=[n for n, _ in NOT_SECRETS])
def test_not_a_secret(code: str) -> None:
    assert [f for f in scan(code) if f.category is Category.SECRET] == []


def _repo(tmp_path, name: str):
    root = tmp_path / name
    root.mkdir()
    (root / "keys.py").write_text(
        'API_KEY = "AKIA4Q2ZR7XK9PLM3VBN"\nAPI_SECRET = "Zq81nVb7Kd02LmPqXw"\n', encoding="utf-8"
    )
    return root


def test_no_output_cache_or_baseline_carries_the_secret(tmp_path) -> None:
    root = _repo(tmp_path, "bot")
    cache = root / CACHE_DIR_NAME
    result = run_audit([root], CONFIG, display_root=root, cache_dir=cache)
    assert len(result.findings) == 2
    write_baseline(root / "baseline.json", result.findings)
    outputs = [render(result, fmt) for fmt in ("json", "sarif", "github", "csv")]
    stored = [p.read_text("utf-8") for p in [*cache.rglob("*.json"), root / "baseline.json"]]
    for text in outputs + stored:
        for secret in ("AKIA4Q2ZR7XK9PLM3VBN", "Zq81nVb7Kd02LmPqXw"):
            for i in range(len(secret) - 5):
                assert secret[i : i + 6] not in text


def test_baseline_of_secrets_is_stable_across_runs_and_checkouts(tmp_path) -> None:
    root = _repo(tmp_path, "bot")
    first = run_audit([root], CONFIG, display_root=root, use_cache=False)
    write_baseline(root / "baseline.json", first.findings)
    baseline = load_baseline(root / "baseline.json")
    again = run_audit([root], CONFIG, display_root=root, use_cache=False, baseline=baseline)
    assert again.findings == [] and again.baselined == 2
    clone = tmp_path / "fresh-checkout"
    shutil.copytree(root, clone)
    elsewhere = run_audit([clone], CONFIG, display_root=clone, use_cache=False, baseline=baseline)
    assert elsewhere.findings == [] and elsewhere.baselined == 2
    # a second hardcoded secret in the same place is new
    (clone / "keys.py").write_text(
        (clone / "keys.py").read_text("utf-8") + 'API_KEY = "BKIA4Q2ZR7XK9PLM3VBX"\n', "utf-8"
    )
    added = run_audit([clone], CONFIG, display_root=clone, use_cache=False, baseline=baseline)
    assert [f.line for f in added.findings] == [3]
