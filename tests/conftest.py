"""Shared test setup: tests import the project's packages from this checkout."""
