"""qctl: the command line over the auditor, migrations, models, engine and TUI."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # the version is read from the installed metadata only when asked for: importing
    # importlib.metadata costs a fifth of `qctl --help`'s start-up
    if name != "__version__":
        raise AttributeError(f"module 'qctl' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qctl")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+local"
