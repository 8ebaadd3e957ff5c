"""AI engine: turns model signals into sized, levered orders."""
