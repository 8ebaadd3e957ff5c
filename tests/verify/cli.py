"""Run `qctl` in-process the way the console script does (through `main`, which maps user
errors to exit code 2), returning the exit code."""

from __future__ import annotations

import sys

import pytest

from qctl.cli import main


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["qctl", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    code = exc.value.code
    return 0 if code is None else int(code)
