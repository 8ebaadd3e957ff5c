"""The ops dashboard: chart data and the copy-trading table."""
