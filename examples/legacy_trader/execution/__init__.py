"""Order execution against Binance USD-M futures (or the in-memory paper client)."""
