"""`qctl sim serve` as a user runs it: starts, answers ccxt, stops cleanly on SIGTERM; user errors
are one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim import DEFAULT_API_KEY, DEFAULT_SECRET
from qctl.cli import app

QCTL = [sys.executable, "-c", "from qctl.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("keys_in_env", [True, False], ids=["env-keys", "demo-keys"])
def test_serve_answers_ccxt_and_stops_on_sigterm(keys_in_env: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("QCTL_API_KEY", "QCTL_API_SECRET")}
    key, secret = DEFAULT_API_KEY, DEFAULT_SECRET
    if keys_in_env:
        key, secret = "cli-key", "cli-secret"
        env.update(QCTL_API_KEY=key, QCTL_API_SECRET=secret)
    proc = subprocess.Popen(
        [*QCTL, "sim", "serve", "--port", "0", "--bar-seconds", "0", "--symbols", "BTC"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = [proc.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("local exchange on http://127.0.0.1:"), banner
        key_line = next(line for line in banner if "api key:" in line)
        assert key in key_line
        assert (secret in key_line) is (not keys_in_env)  # a secret of the user's is not printed
        url = banner[0].split(" on ", 1)[1].strip()
        ex = make_exchange("binanceusdm", url, key, secret, async_=False)
        ex.load_markets()
        ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
        with urllib.request.urlopen(url + "/qctl-sim/ledger", timeout=5) as r:  # noqa: S310
            ledger = json.loads(r.read())
        assert ledger["positions"][0]["qty"] == 0.01 and ledger["symbols"] == ["BTC-USDT"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip().endswith("stopped")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_port_in_use_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*QCTL, "sim", "serve", "--port", str(port), "--symbols", "BTC"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: cannot listen on 127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*QCTL, "sim", "serve", "--data", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "data folder not found" in result.stderr and "Traceback" not in result.stderr


def test_bad_values_are_usage_errors() -> None:
    for args in (["--bar-seconds", "-1"], ["--start", "yesterday"], ["--port", "70000"]):
        result = runner.invoke(app, ["sim", "serve", *args])
        assert result.exit_code == 2, args


def test_fault_ledger_and_advance_commands(sim) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app,
        ["sim", "fault", "http_429", "--count", "2", "--path", "/fapi/v1/klines", "--url", sim.url],
    )
    assert result.exit_code == 0, result.output
    assert "pending: http_429 x2 on /fapi/v1/klines" in result.output
    with urllib.request.urlopen(sim.url + "/qctl-sim/fault", timeout=5) as r:  # noqa: S310
        assert [f["kind"] for f in json.loads(r.read())["pending"]] == ["http_429"]
    before = sim.ledger()["sim_time_ms"]
    result = runner.invoke(app, ["sim", "advance", "3", "--url", sim.url])
    assert result.exit_code == 0 and "simulated time 2025-" in result.output
    assert sim.ledger()["sim_time_ms"] == before + 3 * 3_600_000
    result = runner.invoke(app, ["sim", "ledger", "--url", sim.url])
    assert result.exit_code == 0
    assert json.loads(result.output)["sim_time_ms"] == before + 3 * 3_600_000


def test_control_errors_are_one_line(sim) -> None:  # type: ignore[no-untyped-def]
    for args, expected in (
        (["sim", "fault", "meteor", "--url", sim.url], "unknown fault kind 'meteor'"),
        (
            ["sim", "ledger", "--url", "http://127.0.0.1:9"],
            "no local exchange at http://127.0.0.1:9",
        ),
    ):
        result = subprocess.run(
            [*QCTL, *args], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
