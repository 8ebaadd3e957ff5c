"""The fail-closed drill: with the policy file or the models missing, stale or corrupt, a short
backtest makes zero entries and journals the matching skip reason; a policy that does not fail
closed, or an intact control that never enters, fails the drill."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.backtest import default_policy_path
from engine.core.policy import StaticPolicy
from engine.domain import SkipReason
from engine.journal.invariants import CheckStatus, DrillCase, run_drill
from engine.journal.verify import drill_window, static_drill
from engine.venues.candle_files import sample_data_dir
from qctl.gate import ai_drill
from qctl.options import DEFAULT_EQUITY_USDT
from tests.verify.seed import HOUR_MS

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
BARS = 300
# the tiny test models trade little: the AI drill looks at the four symbols they were trained
# on, over more bars, so that the intact control enters (else the drill is inconclusive)
AI_SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT"]
AI_BARS = 400
TRAIN_BARS = 3000


def test_policy_file_drill_passes(tmp_path: Path) -> None:
    result = static_drill(
        sample_data_dir(),
        SYMBOLS,
        BARS,
        default_policy_path(),
        tmp_path,
        equity=DEFAULT_EQUITY_USDT,
    )
    assert result.status is CheckStatus.PASS, (result.summary, result.details)
    cases = result.data["cases"]
    assert set(cases) == {"missing", "stale", "corrupt", "tampered"}
    for case in cases.values():
        assert case["entries"] == 0
        assert case["skips"][case["expected_skip"]] > 0
    assert cases["stale"]["expected_skip"] == str(SkipReason.MODEL_STALE)
    assert result.data["control"]["entries"] > 0


def test_a_policy_that_ignores_the_broken_artefact_fails_the_drill(tmp_path: Path) -> None:
    md, _ = drill_window(sample_data_dir(), SYMBOLS, BARS, None)
    legacy = StaticPolicy.from_toml(default_policy_path())  # hardcoded values: never skips
    leaky = DrillCase("missing", legacy, SkipReason.MODEL_MISSING, "deleted")
    result = run_drill(md, [leaky], legacy, tmp_path, label="leaky", equity=10_000.0)
    assert result.status is CheckStatus.FAIL
    assert "missing did not fail closed" in result.summary


def test_a_control_that_never_enters_is_inconclusive(tmp_path: Path) -> None:
    md, _ = drill_window(sample_data_dir(), SYMBOLS, BARS, None)

    class Silent:
        name, version = "silent", "0"

        def decide(self, snapshot, portfolio):
            return []

    case = DrillCase("missing", Silent(), SkipReason.MODEL_MISSING, "deleted")
    result = run_drill(md, [case], Silent(), tmp_path, label="silent", equity=10_000.0)
    assert result.status is CheckStatus.FAIL


@pytest.fixture(scope="module")
def small_models(tmp_path_factory) -> Path:
    """A small model set trained on the first 3000 hours of four shipped symbols (seconds)."""
    from engine.venues.candle_files import load_market_data
    from models.train import train_models
    from tests.models.conftest import SMALL  # the models suite's small, single-thread config

    md = load_market_data(sample_data_dir(), symbols=AI_SYMBOLS)
    candles = {s: d.candles.iloc[:TRAIN_BARS].copy() for s, d in md.symbols.items()}
    end = min(int(c.index[-1]) for c in candles.values())
    funding = {s: d.funding.loc[d.funding.index <= end].copy() for s, d in md.symbols.items()}
    out = tmp_path_factory.mktemp("models") / "set"
    train_models(candles, funding, out, SMALL)
    return out


def test_ai_drill_passes_and_leaves_the_models_untouched(
    small_models: Path, tmp_path: Path
) -> None:
    before = {p.name: p.read_bytes() for p in small_models.iterdir()}
    result = ai_drill(sample_data_dir(), AI_SYMBOLS, AI_BARS, small_models, tmp_path)
    assert result.status is CheckStatus.PASS, (result.summary, result.details)
    cases = result.data["cases"]
    assert {k: v["expected_skip"] for k, v in cases.items()} == {
        "missing": "MODEL_MISSING",
        "corrupt": "MODEL_CORRUPT",
        "stale": "MODEL_STALE",
    }
    assert all(c["entries"] == 0 for c in cases.values())
    assert result.data["control"]["entries"] > 0
    assert {p.name: p.read_bytes() for p in small_models.iterdir()} == before


def test_ai_drill_with_refused_models_fails(small_models: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "models"
    shutil.copytree(small_models, broken)
    (broken / "kill.txt").unlink()
    result = ai_drill(sample_data_dir(), SYMBOLS, BARS, broken, tmp_path / "work")
    assert result.status is CheckStatus.FAIL
    assert "intact models refused" in result.summary


def test_publish_from_models_and_check(small_models: Path, tmp_path: Path) -> None:
    """`qctl policy publish --models` writes AIPolicy's decisions; `check` accepts the file."""
    from typer.testing import CliRunner

    from engine.policy_file import load_policy_file, parse_utc
    from qctl.cli import app

    out = tmp_path / "p.json"
    runner = CliRunner()
    args = ["policy", "publish", "--models", str(small_models), "--out", str(out),
            "--end", "2025-09-01", "--valid-for", "2", "--symbols", "BTC,ETH,SOL,XRP"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = load_policy_file(out)
    assert doc.data["source"]["kind"] == "ai"
    assert doc.data["source"]["as_of"] == "2025-09-01T00:00:00Z"
    assert doc.valid_until_ms - 2 * HOUR_MS == parse_utc(doc.data["created_at"])
    # every symbol is accounted for: published with values, or left out with its skip reason
    left_out = doc.data["source"].get("omitted", {})
    assert not set(left_out) & set(doc.symbols)
    assert set(left_out) | set(doc.symbols) == {"BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT"}
    assert all(reason.split(":")[0] in SkipReason.__members__ for reason in left_out.values())
    assert runner.invoke(app, ["policy", "check", str(out)]).exit_code == 0


def test_ai_backtest_decisions_vary_and_keep_the_invariants(
    small_models: Path, tmp_path: Path
) -> None:
    """The owner's "should see varying values", shown on an AIPolicy backtest's journal."""
    from engine.backtest import run_backtest
    from engine.core.tiers import LeverageTiers
    from engine.journal.invariants import check_journal, check_variation
    from engine.journal.store import Journal
    from engine.venues.simulated import BrokerConfig
    from models.policy import POLICY_NAME, AIPolicy
    from models.registry import load_models
    from tests.verify.seed import TIERS

    valid_until = load_models(small_models).valid_until_ms
    md, _ = drill_window(sample_data_dir(), AI_SYMBOLS, 1500, valid_until - 1000)
    tiers = LeverageTiers.load(TIERS)
    policy = AIPolicy.from_dir(
        small_models, tiers=tiers, funding={s: sd.funding for s, sd in md.symbols.items()},
        round_trip_cost=BrokerConfig.from_toml().break_even_offset(),
    )  # fmt: skip
    db = tmp_path / "ai.db"
    with Journal(db) as journal:
        run_backtest(md, policy, equity=10_000.0, journal=journal, tiers=tiers)
    with Journal.open_readonly(db) as journal:
        variation = check_variation(journal, [POLICY_NAME])
        invariants = check_journal(journal, tiers=tiers)
    assert variation.status is CheckStatus.PASS, (variation.summary, variation.details)
    for field in ("leverage", "size_pct", "harvest_t1_r"):
        assert all(run[field]["distinct"] > 1 for run in variation.data["runs"].values())
    for r in invariants:
        assert r.status is CheckStatus.PASS, (r.name, r.details)


def test_verify_drills_the_default_model_dir(
    small_models: Path, tmp_path: Path, monkeypatch
) -> None:
    """`qctl train` writes ./qctl_models; `qctl verify` drills it without being told."""
    import json
    import shutil

    from typer.testing import CliRunner

    from qctl.cli import app

    shutil.copytree(small_models, tmp_path / "qctl_models")
    monkeypatch.chdir(tmp_path)
    args = ["verify", "--only", "drill", "--drill-symbols", ",".join(AI_SYMBOLS),
            "--drill-bars", str(AI_BARS), "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    drill = json.loads(result.output)["checks"][0]
    assert drill["data"]["policy"].startswith("AIPolicy")
