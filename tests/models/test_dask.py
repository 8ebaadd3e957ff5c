"""Research past one machine: the same model set with or without Dask; no Dask unless asked."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.registry import HEAD_NAMES
from models.sweep import SweepSpec, run_sweep
from models.train import train_models

from .conftest import SMALL

pytest.importorskip("distributed")

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def _files(directory: Path) -> dict[str, bytes]:
    return {
        f"{name}.{ext}": (directory / f"{name}.{ext}").read_bytes()
        for name in HEAD_NAMES
        for ext in ("txt", "json")
    }


@pytest.fixture(scope="module")
def cluster():
    from models.jobs import DaskRunner

    with DaskRunner("local", workers=2) as runner:
        yield runner


def test_two_local_workers_give_the_same_cards_as_no_dask(market, tmp_path, cluster):
    candles, funding = market
    assert cluster.workers == 2
    here = train_models(candles, funding, tmp_path / "here", SMALL, created_at=CREATED)
    there = train_models(
        candles, funding, tmp_path / "dask", SMALL, created_at=CREATED, runner=cluster
    )
    assert here.set_id == there.set_id
    assert _files(tmp_path / "here") == _files(tmp_path / "dask")


def test_a_sweep_scores_the_same_on_dask_and_picks_by_validation_net_sharpe(market, cluster):
    candles, funding = market
    spec = SweepSpec.from_mapping({"params": {"num_leaves": [3, 7], "min_entry_t": [0.0, 50.0]}})
    best, rows = run_sweep(candles, funding, spec, SMALL, 0.0014)
    best_d, rows_d = run_sweep(candles, funding, spec, SMALL, 0.0014, runner=cluster)
    assert [r.score for r in rows] == [r.score for r in rows_d] and best == best_d
    assert len(rows) == 4
    # an entry bar of t >= 50 is never met: those configurations do not trade and score 0
    assert all(r.score == 0.0 and r.entry is None for r in rows if r.changes["min_entry_t"] == 50)
    assert max(r.score for r in rows) == next(
        r.score for r in rows if r.changes == {k: getattr(best, k) for k in spec.params}
    )


def test_the_walk_forward_gives_the_same_figures_on_dask(cluster):
    from engine.backtest import default_policy_path
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from models.walkforward import WalkForwardConfig, slice_market, walk_forward

    from .conftest import BARS, SYMBOLS

    md = load_market_data(sample_data_dir(), symbols=list(SYMBOLS))
    first = min(int(sd.candles.index[0]) for sd in md.symbols.values())
    md = slice_market(md, first, first + BARS * 3_600_000, 0)
    wf = WalkForwardConfig(folds=2, initial_fraction=0.6)
    here = walk_forward(md, default_policy_path(), SMALL, wf, equity=10_000.0)
    there = walk_forward(md, default_policy_path(), SMALL, wf, equity=10_000.0, runner=cluster)
    assert here == there


def test_without_the_flag_nothing_of_dask_is_imported(market, tmp_path):
    candles, funding = market
    data = tmp_path / "data"
    (data / "ohlcv").mkdir(parents=True)
    (data / "funding").mkdir()
    for symbol, frame in candles.items():
        frame.to_csv(data / "ohlcv" / f"binance_usdm_{symbol}_1h.csv")
        funding[symbol].to_csv(data / "funding" / f"binance_usdm_{symbol}_8h_funding.csv")
    (tmp_path / "small.toml").write_text(
        "[train]\n" + "\n".join(f"{k} = {v!r}" for k, v in SMALL.as_dict().items()
                                if k != "favourable_quantiles").replace("'", '"')
    )  # fmt: skip
    script = (
        "import sys\n"
        "from qctl.cli import main\n"
        f"sys.argv = ['qctl', 'train', '--data', {str(data)!r}, '--out', {str(tmp_path / 'm')!r},"
        f" '--config', {str(tmp_path / 'small.toml')!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print('DASK', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DASK []" in done.stdout
    assert (tmp_path / "m" / "direction.json").is_file()


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "qctl.cli", "train", "--dask", "tcp://127.0.0.1:9"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cannot reach the Dask scheduler" in done.stderr and "Traceback" not in done.stderr
