"""Venues plug into the core: the simulated broker, candle files, ccxt feeds and brokers, the local exchange."""
