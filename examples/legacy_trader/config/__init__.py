"""Service configuration: environment-driven settings shared by every process."""
