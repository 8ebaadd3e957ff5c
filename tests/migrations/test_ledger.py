"""The ledger and its reverse patches: byte-for-byte restores, and refusals that say why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrations import api
from migrations.errors import MigrateError
from migrations.ledger import ROLLED_BACK, Ledger
from migrations.patch import apply_patch, make_patch

_LINES = st.lists(
    st.sampled_from(["a\n", "b\r\n", "c", "leverage = 10.0\n", "\n", "é\n", "x\x0c\n"]), max_size=15
)


@given(_LINES.map("".join), _LINES.map("".join))
def test_patch_round_trips_exactly(before: str, after: str) -> None:
    assert apply_patch(before, make_patch(before, after, "f.py")) == after
    assert apply_patch(after, make_patch(after, before, "f.py")) == before


def test_a_patch_that_does_not_match_is_refused() -> None:
    patch = make_patch("a\nb\nc\n", "a\nB\nc\n", "f.py")
    with pytest.raises(MigrateError, match="does not apply"):
        apply_patch("a\nX\nc\n", patch)


def _repo(tmp_path, text: str):
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "trade.py").write_bytes(text.encode("utf-8"))
    api.init(tmp_path)
    return tmp_path / "bot" / "trade.py"


def test_crlf_file_is_migrated_and_restored_byte_for_byte(tmp_path):
    original = (
        "import os\r\n\r\n"
        "def open_trade(symbol, account_equity):\r\n"
        "    leverage = 10.0  # fallback\r\n"
        "    kill_score = 0.0\r\n"
        "    if kill_score >= 0.65:\r\n"
        "        return None\r\n"
        "    return leverage"  # no newline at the end
    )
    path = _repo(tmp_path, original)
    api.apply(tmp_path, "sizing", write=True)
    migrated = path.read_bytes()
    assert b'qctl_policy.policy_value("leverage", symbol)\r\n' in migrated
    assert b"\n" not in migrated.replace(b"\r\n", b"")  # every new line is CRLF too
    api.apply(tmp_path, "kill", write=True)
    with pytest.raises(MigrateError, match="later phase"):
        api.rollback(tmp_path, "1")  # phase 4 changed the file since
    api.rollback(tmp_path, "4")
    api.rollback(tmp_path, "1")
    assert path.read_bytes() == original.encode("utf-8")
    ledger = Ledger(tmp_path)
    try:
        rows = ledger.rows()
    finally:
        ledger.close()
    assert [(r["phase"], r["status"]) for r in rows] == [("1", ROLLED_BACK), ("4", ROLLED_BACK)]
    assert all(r["reverse_patch"].startswith("--- a/bot/trade.py") for r in rows)
    api.apply(tmp_path, "1", write=True)  # applying again after a rollback is allowed
    assert api.status(tmp_path)[0].applied


def test_a_file_that_does_not_compile_is_never_touched(tmp_path):
    path = _repo(tmp_path, "def f(symbol):\n    leverage = 10.0\n    return leverage\n")
    broken = tmp_path / "bot" / "broken.py"
    broken.write_text("def f(:\n    leverage = 10.0\n", "utf-8")
    result = api.apply(tmp_path, "1", write=True)
    assert result.files == ["bot/trade.py"]
    assert broken.read_text("utf-8") == "def f(:\n    leverage = 10.0\n"
    assert "policy_value" in path.read_text("utf-8")
