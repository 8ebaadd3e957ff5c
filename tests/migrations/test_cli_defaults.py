"""A value that feeds a command-line default stays as it is, with the reason in the plan.

`p.add_argument("--budget", default=float(os.getenv("BOT_BUDGET", "500")))` inside `main()` runs
before the arguments are parsed: a policy look-up there would stop the program at start-up, even
`bot.py --help`, whenever no policy file is published. The decision code of the same file is still
migrated, and the migrated program starts and answers --help with no policy file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext, CodemodTest

from migrations import api
from migrations.phase_sizing import SizingFallbacks
from migrations.syntax import CLI_DEFAULT

BOT = """
import argparse
import os

DEFAULT_LEVERAGE = 5.0


def open_trade(exchange, symbol, overrides):
    lev = overrides.get(symbol) or 10
    exchange.set_leverage(lev, symbol)
    return exchange.create_order(symbol, "market", "buy", 1.0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=float(os.getenv("BOT_BUDGET", "500")))
    p.add_argument("--leverage", type=float, default=10.0)
    p.add_argument("--max-leverage", type=float, default=DEFAULT_LEVERAGE)
    p.set_defaults(size_usd=250.0)
    args = p.parse_args()
    open_trade(None, "BTCUSDT", {})
    return args


if __name__ == "__main__":
    main()
"""


class TestCommandLineDefaults(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_cli_defaults_stay_and_the_decision_is_migrated(self) -> None:
        after = """
            import argparse
            import os
            import qctl_policy

            DEFAULT_LEVERAGE = 5.0


            def open_trade(exchange, symbol, overrides):
                lev = overrides.get(symbol) or qctl_policy.policy_value("leverage", symbol)
                if lev is None:
                    qctl_policy.skip("leverage", symbol)
                    return None
                exchange.set_leverage(lev, symbol)
                return exchange.create_order(symbol, "market", "buy", 1.0)


            def main():
                p = argparse.ArgumentParser()
                p.add_argument("--budget", type=float, default=float(os.getenv("BOT_BUDGET", "500")))
                p.add_argument("--leverage", type=float, default=10.0)
                p.add_argument("--max-leverage", type=float, default=DEFAULT_LEVERAGE)
                p.set_defaults(size_usd=250.0)
                args = p.parse_args()
                open_trade(None, "BTCUSDT", {})
                return args


            if __name__ == "__main__":
                main()
        """
        self.assertCodemod(BOT, after)

    def test_click_and_typer_defaults_stay(self) -> None:
        before = """
            import click
            import typer
            from typer import Option as Opt


            @click.command()
            @click.option("--leverage", default=10.0)
            def run(leverage):
                return leverage


            def serve(symbol: str, leverage: float = typer.Option(10.0, "--leverage")):
                return leverage


            def watch(symbol: str, leverage: float = Opt(10.0, "--leverage")):
                return leverage


            def Option(leverage: float) -> float:  # an options contract, not a CLI declaration
                return leverage


            def price(symbol: str) -> float:
                leverage = None
                if leverage is None:
                    leverage = 10.0
                return Option(leverage)
        """
        after = """
            import click
            import typer
            from typer import Option as Opt
            import qctl_policy


            @click.command()
            @click.option("--leverage", default=10.0)
            def run(leverage):
                return leverage


            def serve(symbol: str, leverage: float = typer.Option(10.0, "--leverage")):
                return leverage


            def watch(symbol: str, leverage: float = Opt(10.0, "--leverage")):
                return leverage


            def Option(leverage: float) -> float:  # an options contract, not a CLI declaration
                return leverage


            def price(symbol: str) -> float:
                leverage = None
                if leverage is None:
                    leverage = qctl_policy.policy_value("leverage", symbol)
                    if leverage is None:
                        raise qctl_policy.PolicySkip("leverage", symbol)
                return Option(leverage)
        """
        self.assertCodemod(before, after)


def test_each_cli_finding_is_listed_with_the_reason() -> None:
    codemod = SizingFallbacks(CodemodContext())
    codemod.transform_module(cst.parse_module(BOT))
    refused = {u.finding.name: u.reason for u in codemod.cannot}
    assert refused["BOT_BUDGET"] == CLI_DEFAULT
    assert refused["leverage"] == CLI_DEFAULT
    assert refused["size_usd"] == CLI_DEFAULT  # p.set_defaults(size_usd=250.0)
    assert refused["DEFAULT_LEVERAGE"].startswith("DEFAULT_LEVERAGE is read in ")
    assert [f.name for f in codemod.resolved] == ["lev"]


def test_the_migrated_bot_starts_with_no_policy_file(tmp_path: Path) -> None:
    (tmp_path / "bot.py").write_text(BOT.lstrip(), "utf-8")
    api.init(tmp_path)
    for phase in ("1", "2", "3", "4"):
        api.apply(tmp_path, phase, write=True, allow_dirty=True)
    migrated = (tmp_path / "bot.py").read_text("utf-8")
    assert "qctl_policy.policy_value" in migrated  # the decision was migrated
    plan = {p.number: p for p in api.plan(tmp_path)}
    assert any(u.reason == CLI_DEFAULT for u in plan["1"].cannot)
    env = {**os.environ, "QCTL_POLICY_FILE": str(tmp_path / "no_such_policy.json")}
    proc = subprocess.run(
        [sys.executable, "bot.py", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--budget" in proc.stdout
