"""`qctl trade` and `qctl ctl` from the command line, and controls acted on by a live session."""

from __future__ import annotations

from typer.testing import CliRunner

from engine.journal.store import Journal, request_control
from engine.venues.exchange_sim.server import DEFAULT_API_KEY, DEFAULT_SECRET
from qctl.cli import app
from tests.trade.conftest import run_session
from tests.verify.cli import run_main

runner = CliRunner()


def _error(capsys, monkeypatch, *args: str) -> str:
    """Run `qctl ARGS` through `main` (as the console script does): exit 2 and one line."""
    assert run_main(monkeypatch, *args) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_trade_needs_exactly_one_mode(capsys, monkeypatch):
    assert "choose one of --paper or --live" in _error(
        capsys, monkeypatch, "trade", "--symbols", "BTC"
    )
    assert "choose one" in _error(
        capsys, monkeypatch, "trade", "--paper", "--live", "--symbols", "BTC"
    )


def test_live_without_keys_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("QCTL_API_KEY", raising=False)
    monkeypatch.delenv("QCTL_API_SECRET", raising=False)
    assert "QCTL_API_KEY" in _error(capsys, monkeypatch, "trade", "--live", "--symbols", "BTC")


def test_paper_without_equity_or_symbols_is_a_usage_error(capsys, monkeypatch):
    assert "--symbols" in _error(capsys, monkeypatch, "trade", "--paper")
    assert "--equity" in _error(capsys, monkeypatch, "trade", "--paper", "--symbols", "BTC")


def test_trade_live_from_the_command_line_runs_and_keeps_keys_out_of_every_output(
    sim, tmp_path, monkeypatch
):
    monkeypatch.setenv("QCTL_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("QCTL_API_SECRET", DEFAULT_SECRET)
    db = tmp_path / "cli.db"
    import threading

    stop = threading.Event()

    def clock() -> None:  # the local exchange closes a bar every 20 ms of wall time
        while not stop.wait(0.02):
            sim.advance(1)

    threading.Thread(target=clock, daemon=True).start()
    try:
        result = runner.invoke(app, ["trade", "--live", "--symbols", "BTC,ETH", "--api-url", sim.url,
                                     "--db", str(db), "--max-bars", "5", "--poll-seconds", "0.01"])  # fmt: skip
    finally:
        stop.set()
    assert result.exit_code == 0, result.output
    assert "stopped: run" in result.output and "5 bar(s)" in result.output
    log = (tmp_path / "cli.db.log").read_text()
    assert '"event": "cycle"' in log
    blob = result.output + log + db.read_bytes().decode("latin-1")
    assert DEFAULT_SECRET not in blob and DEFAULT_API_KEY not in blob


def test_ctl_refuses_when_no_session_is_running(capsys, monkeypatch, tmp_path):
    db = tmp_path / "x.db"
    with Journal(db) as j:
        j.start_run("backtest", "legacy")
    assert "no running `qctl trade`" in _error(capsys, monkeypatch, "ctl", "pause", "--db", str(db))
    missing = str(tmp_path / "none.db")
    assert "none.db" in _error(capsys, monkeypatch, "ctl", "halt", "--db", missing)


def test_a_control_sent_while_waiting_for_a_bar_is_acted_on(sim, tmp_path):
    db = tmp_path / "live.db"
    waits = {"n": 0}

    def clock() -> None:
        waits["n"] += 1
        if waits["n"] == 3:
            request_control(db, "pause", source="test")
        sim.advance(1)

    run_session(sim, db, bars=8, on_wait=clock)
    with Journal.open_readonly(db) as j:
        controls = j.rows("control")
        states = [r["state"] for r in j.rows("equity")]
    assert controls and controls[0]["handled_ts"] is not None
    assert "REDUCING" in controls[0]["result"]
    assert states[-1] == "REDUCING"


def test_ctl_flatten_reaches_a_running_session(sim, tmp_path):
    db = tmp_path / "live.db"
    waits = {"n": 0}
    sent = {}

    def clock() -> None:
        waits["n"] += 1
        if waits["n"] == 12:
            result = runner.invoke(app, ["ctl", "flatten", "--db", str(db)])
            sent["out"] = result.output
        sim.advance(1)

    run_session(sim, db, bars=14, on_wait=clock)
    assert "queued flatten" in sent["out"]
    with Journal.open_readonly(db) as j:
        control = j.rows("control")[0]
    assert control["handled_ts"] is not None and control["result"].startswith("closed")
    assert not any(float(p["qty"]) for p in sim.ledger()["positions"])


def test_wrong_keys_are_one_line_without_the_keys(sim, tmp_path, capsys, monkeypatch):
    secret = "wrong-secret-0123456789abcdef"
    monkeypatch.setenv("QCTL_API_KEY", "wrong-key-0123456789")
    monkeypatch.setenv("QCTL_API_SECRET", secret)
    sim.advance(1)
    args = ("trade", "--live", "--symbols", "BTC", "--api-url", sim.url, "--db", str(tmp_path / "k.db"),
            "--max-bars", "1", "--poll-seconds", "0.01")  # fmt: skip
    err = _error(capsys, monkeypatch, *args)
    assert "AuthenticationError" in err and "API-key" in err
    assert secret not in err and "wrong-key-0123456789" not in err
    assert secret not in (tmp_path / "k.db.log").read_text()
