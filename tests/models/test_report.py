"""`qctl models report MODEL_DIR --html FILE`: one self-contained page from the set's cards."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from models.report import render_report
from qctl.cli import app

runner = CliRunner()


def test_the_report_shows_each_fold_the_entry_rule_calibration_and_importance(trained):
    page = render_report(trained.out_dir)
    card = trained.cards["direction"]
    assert trained.set_id in page
    for k in range(1, len(card["metrics"]["auc_by_fold"]) + 1):
        assert f"fold {k}:" in page
    # per fold three rows: the AI, every signal and flat, with trades, costs and funding
    assert page.count("<td>flat</td>") == len(card["metrics"]["auc_by_fold"])
    assert "funding paid" in page and "fees + slippage" in page
    assert f"{card['outputs']['min_confidence']:.4g}" in page
    assert "counting entry times" in page  # both counts of the entry level's evidence
    assert "Brier" in page and "Feature importance" in page
    assert len(re.findall("<svg", page)) >= len(card["metrics"]["auc_by_fold"]) + 2 + 4
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_report_command_writes_the_file_and_refuses_a_broken_set(trained, model_copy, tmp_path):
    out = tmp_path / "r" / "report.html"
    done = runner.invoke(app, ["models", "report", str(trained.out_dir), "--html", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text().startswith("<!doctype html>")
    (model_copy / "kill.txt").unlink()
    done = runner.invoke(app, ["models", "report", str(model_copy), "--html", str(out)])
    assert done.exit_code != 0
