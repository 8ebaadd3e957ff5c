"""LightGBM models that produce the trading policy: features, labels, heads, registry, AIPolicy."""
