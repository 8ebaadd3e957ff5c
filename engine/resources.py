"""Where the files shipped inside the package live (one definition for every part of engine/)."""

from pathlib import Path

SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data"
