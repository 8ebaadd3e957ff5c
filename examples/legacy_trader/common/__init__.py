"""Small helpers shared by every service: time units, caching and the settings base."""
