"""qctl: the command line over the auditor, migrations, models, engine and TUI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qctl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
