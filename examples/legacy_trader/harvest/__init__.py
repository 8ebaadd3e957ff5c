"""Profit harvesting: the R-multiple ladder and the kill switch that close positions."""
