"""`qctl train` and `qctl models` as a user runs them: files written, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qctl.cli import app, main

runner = CliRunner()

SMALL_TOML = """
[train]
num_threads = 1
num_leaves = 7
rounds = 15
min_data_in_leaf = 30
folds = 2
val_fraction = 0.2
grid_points = 5
horizon_bars = 12
min_entry_t = 0.0
entry_fold_share = 0.0
kelly_fraction = 0.02
"""


def _qctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The entry point in a subprocess: the exit code and output a user sees."""
    return subprocess.run(
        [sys.executable, "-m", "qctl.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip


@pytest.fixture
def qctl(monkeypatch, capsys):
    """`qctl.cli.main` in this process (exit code, stdout, stderr): fast, same error mapping."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str, cwd: Path) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["qctl", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def workspace(market, tmp_path_factory) -> Path:
    """A data folder in the shipped layout, a small config, and one `qctl train` run."""
    candles, funding = market
    root = tmp_path_factory.mktemp("cli")
    (root / "data" / "ohlcv").mkdir(parents=True)
    (root / "data" / "funding").mkdir()
    for symbol, frame in candles.items():
        frame.to_csv(root / "data" / "ohlcv" / f"binance_usdm_{symbol}_1h.csv")
        funding[symbol].to_csv(root / "data" / "funding" / f"binance_usdm_{symbol}_8h_funding.csv")
    (root / "small.toml").write_text(SMALL_TOML)
    done = runner.invoke(
        app,
        [
            "train", "--data", str(root / "data"), "--out", str(root / "models"),
            "--config", str(root / "small.toml"), "--holdout-symbols", "XRP",
        ],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "model set" in done.output and "auc" in done.output
    return root


@pytest.mark.parametrize(
    "command",
    [["train"], ["models"], ["models", "list"], ["models", "show"], ["models", "compare"]],
)
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_train_writes_a_model_set(workspace):
    files = sorted(p.name for p in (workspace / "models").iterdir())
    assert "direction.txt" in files and "direction.json" in files and len(files) == 16
    card = json.loads((workspace / "models" / "direction.json").read_text())
    assert card["holdout_symbols"] == ["XRP-USDT"] and "XRP-USDT" not in card["symbols"]


def test_models_list_and_show(workspace, qctl):
    card = json.loads((workspace / "models" / "direction.json").read_text())
    inside = card["training_window"]["end"]
    code, out, err = qctl("models", "list", "--dir", "models", "--at", inside, cwd=workspace)
    assert code == 0, err
    assert "direction" in out and "auc" in out and "would use this set" in out
    # the same set judged now, past its valid_until: refused, as the policy would refuse it
    code, out, _ = qctl("models", "list", "--dir", "models", cwd=workspace)
    assert code == 1 and "refused" in out and card["valid_until"] in out
    code, out, _ = qctl("models", "show", "direction", "--dir", "models", "--json", cwd=workspace)
    assert code == 0
    assert json.loads(out)["name"] == "direction"
    code, out, _ = qctl("models", "show", "favourable_t2", "--dir", "models", cwd=workspace)
    assert code == 0 and "feature" in out


def test_a_refused_model_makes_list_exit_1(workspace, tmp_path, qctl):
    import shutil

    shutil.copytree(workspace / "models", tmp_path / "models")
    (tmp_path / "models" / "kill.txt").unlink()
    code, out, _ = qctl("models", "list", "--dir", "models", cwd=tmp_path)
    assert code == 1 and "missing" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "list", "--dir", "nowhere"], "run `qctl train` first"),
        (["models", "show", "nope", "--dir", "models"], "unknown model"),
        (["train", "--data", "data", "--config", "bad.toml"], "unknown training parameter"),
        (["train", "--data", "data", "--holdout-symbols", "DOGE"], "not in the data"),
        (["models", "compare", "--dir", "models", "--data", "data", "--holdout-symbols", "BTC"], "not a held-out symbol"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line_with_exit_2(workspace, args, message, qctl):
    (workspace / "bad.toml").write_text("[train]\nround = 3\n")
    code, out, err = qctl(*args, cwd=workspace)
    assert code == 2, out + err
    assert message in err and "Traceback" not in err


def test_the_installed_entry_point_maps_model_errors_to_exit_2(workspace):
    done = _qctl("models", "list", "--dir", "nowhere", cwd=workspace)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) <= 2


def test_compare_on_a_held_out_symbol(workspace, qctl):
    code, out, err = qctl(
        "models", "compare", "--dir", "models", "--data", "data", "--holdout-symbols", "XRP", "--json",
        cwd=workspace,
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["symbols"] == ["XRP-USDT"]
    assert set(payload["runs"]) == {"legacy", "ai"}
    assert "total return" in payload["runs"]["ai"]["metrics"]


def test_compare_only_decides_out_of_sample(workspace):
    from engine.backtest import default_policy_path
    from engine.domain import AutonomyZone
    from models.compare import compare

    result = compare(
        workspace / "data", workspace / "models", default_policy_path(), equity=10_000.0
    )
    assert [run.label for run in result.runs] == ["legacy", "ai"]
    for run in result.runs:
        assert run.decisions, run.label
        assert min(d.ts for d in run.decisions) >= result.start_ms + 3_600_000
    for d in result.runs[1].decisions:
        assert d.policy == "ai"
        assert d.skip is not None or AutonomyZone().explain(d) is None
    assert any("in time only" in note for note in result.notes)


def test_a_sweep_prints_its_table_saves_it_and_trains_the_best(workspace, tmp_path, qctl):
    (tmp_path / "sweep.toml").write_text(
        '[sweep]\nmethod = "grid"\n[sweep.params]\nnum_leaves = [3, 7]\n'
    )
    code, out, err = qctl(
        "train", "--data", str(workspace / "data"), "--out", str(tmp_path / "m"),
        "--config", str(workspace / "small.toml"), "--sweep", str(tmp_path / "sweep.toml"),
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "m" / "sweep.json").read_text())
    assert [r["params"]["num_leaves"] for r in rows] == [3, 7]
    best = max(rows, key=lambda r: r["net_sharpe"])["params"]["num_leaves"]
    card = json.loads((tmp_path / "m" / "direction.json").read_text())
    assert card["train_config"]["num_leaves"] == best
    assert "net Sharpe" in out and f"best: num_leaves={best}" in out


def test_a_bad_sweep_file_is_one_line_and_exit_2(workspace, tmp_path, qctl):
    (tmp_path / "sweep.toml").write_text("[sweep.params]\nnum_leafs = [3]\n")
    code, _, err = qctl(
        "train", "--data", "data", "--sweep", str(tmp_path / "sweep.toml"), cwd=workspace
    )
    assert code == 2 and "unknown training parameter 'num_leafs'" in err


def test_walk_forward_with_a_sweep_chooses_per_fold_and_the_report_shows_it(
    workspace, tmp_path, qctl
):
    (tmp_path / "sweep.toml").write_text(
        '[sweep]\nmethod = "grid"\n[sweep.params]\nnum_leaves = [3, 7]\n'
    )
    code, out, err = qctl(
        "train", "--data", str(workspace / "data"), "--out", str(tmp_path / "m"),
        "--config", str(workspace / "small.toml"), "--sweep", str(tmp_path / "sweep.toml"),
        "--walk-forward", "2", cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    wf = json.loads((tmp_path / "m" / "walkforward.json").read_text())
    card = json.loads((tmp_path / "m" / "direction.json").read_text())
    assert wf["model_set"] == card["set_id"] and len(wf["folds"]) == 2
    for fold in wf["folds"]:
        assert fold["chosen"]["num_leaves"] in (3, 7)  # chosen on the fold's own past
        assert set(fold["runs"]) == {"legacy", "ai"}
    assert "walk-forward through the engine" in out and "legacy" in out
    code, _, err = qctl(
        "models", "report", str(tmp_path / "m"), "--html", str(tmp_path / "r.html"), cwd=tmp_path
    )
    assert code == 0, err
    assert "Walk-forward through the engine" in (tmp_path / "r.html").read_text()
