"""The journal stands apart: the SQLite store of every run, and the checks `qctl verify` runs on it."""
