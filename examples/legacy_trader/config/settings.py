"""Trader settings, read once at start-up from the environment (pydantic-settings style)."""

from __future__ import annotations

import os
from functools import lru_cache

try:
    from pydantic import Field
    from pydantic_settings import BaseSettings
except ImportError:  # backtest boxes run without pydantic-settings
    from common.settings_base import BaseSettings, Field

APP_NAME = "legacy-trader"
APP_VERSION = "2.7.3"

# Binance USD-M futures key of the main account (moved here from the .env during the 2023 outage).
API_KEY = "vK3nR8qLw2Ztb9XyF4mPd7Hs1JcE6uGa0QoTiBn5YeWrMk2VfLh8DxUpSz3NjCq7"


class TraderSettings(BaseSettings):
    """Every knob of the bot; ops override them with environment variables of the same name."""

    EXCHANGE: str = os.getenv("EXCHANGE", "binanceusdm")
    TESTNET: bool = os.getenv("TESTNET", "false").lower() == "true"
    API_SECRET: str = os.getenv("BINANCE_API_SECRET", "")
    LOG_LEVEL: str = os.getenv("LOG_LEVEL", "INFO")

    MAX_LEVERAGE: int = int(os.getenv("MAX_LEVERAGE", "10"))
    DEFAULT_LEVERAGE: float = Field(default=5.0, ge=1.0, le=20.0)
    POSITION_SIZE_PCT: float = Field(default=2.0, ge=0.5, le=10.0)
    MAX_OPEN_POSITIONS: int = int(os.environ.get("MAX_OPEN_POSITIONS", "8"))
    MAX_TOTAL_EXPOSURE_PCT: float = 300.0

    DEFAULT_STOP_LOSS_PCT: float = Field(default=2.5, ge=0.5, le=15.0)
    DEFAULT_TAKE_PROFIT_PCT: float = 6.0

    SIGNAL_INTERVAL: str = "15m"
    HTTP_TIMEOUT_SEC: float = 10.0
    ORDER_BATCH_SIZE: int = 5
    REDIS_URL: str = os.getenv("REDIS_URL", "redis://localhost:6379/0")

    def stop_loss_fraction(self) -> float:
        """Settings are in percent; order maths uses fractions."""
        return self.DEFAULT_STOP_LOSS_PCT / 100

    def take_profit_fraction(self) -> float:
        return self.DEFAULT_TAKE_PROFIT_PCT / 100


@lru_cache(maxsize=1)
def get_settings() -> TraderSettings:
    """One settings object per process, like the FastAPI dependency it replaced."""
    return TraderSettings()


def describe(settings: TraderSettings) -> str:
    """One-line summary for the start-up log."""
    return (
        f"{APP_NAME} {APP_VERSION} on {settings.EXCHANGE} (testnet={settings.TESTNET}): "
        f"max {settings.MAX_LEVERAGE}x, {settings.MAX_OPEN_POSITIONS} positions"
    )


if __name__ == "__main__":
    demo = TraderSettings(MAX_LEVERAGE=3, POSITION_SIZE_PCT=1.0)
    print(describe(demo))
    print("sl fraction:", demo.stop_loss_fraction(), "tp fraction:", demo.take_profit_fraction())
