"""Risk controls: the hard safety limits and the per-trade governor."""
