"""Textual monitor over a qctl journal: positions, decisions, safety-limit gauges, equity, controls."""
