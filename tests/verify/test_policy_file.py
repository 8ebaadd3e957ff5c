"""The policy file: build from decisions or any Policy, write, read back, and refuse every kind
of bad file with a precise message; the JSON Schema and the validator agree."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import jsonschema
import pytest

from engine.domain import (
    AutonomyZone,
    Decision,
    HarvestLadder,
    Portfolio,
    SafetyLimits,
    Side,
    SkipReason,
)
from engine.policy_file import (
    SCHEMA_PATH,
    SYMBOL_KEYS,
    PolicyFileCorrupt,
    PolicyFileError,
    PolicyFileMissing,
    PolicyFileOutOfBounds,
    PolicyFileStale,
    build_document,
    check_document,
    document_hash,
    load_policy_file,
    load_schema,
    parse_utc,
    read_document,
    seal,
    write_policy_file,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "policy.example.json"
NOW = parse_utc("2026-11-25T15:00:00Z")
HOUR_MS = 3_600_000


def ladder(t1: float, t2: float, t3: float, lock: float) -> HarvestLadder:
    return HarvestLadder(t1, t2, t3, lock, t1_close_frac=0.4, t2_close_frac=0.5)


def entry(symbol: str, leverage: float, size: float, t1: float = 1.5) -> Decision:
    return Decision(
        ts=NOW, symbol=symbol, side=Side.LONG, leverage=leverage, size_pct=size,
        stop_loss_pct=0.02, take_profit_pct=0.06, harvest=ladder(t1, t1 + 1, t1 + 3, 1.0),
        kill_threshold=0.6, kill_reduce_threshold=0.5, kill_reduce_frac=0.25,
        max_hold_sec=86_400.0, confidence=0.7,
    )  # fmt: skip


def good_doc() -> dict:
    return build_document(
        [
            entry("BTC/USDT:USDT", 7.5, 0.12),
            entry("ETHUSDT", 3.0, 0.05, t1=2.0),
            Decision.skipped(NOW, "SOL-USDT", SkipReason.LOW_CONFIDENCE, "no edge"),
        ],
        kind="ai",
        policy="ai",
        model_version="set-1",
        created_ms=NOW,
        valid_for_ms=24 * HOUR_MS,
        as_of_ms=NOW,
    )


def resealed(doc: dict) -> dict:
    return seal(doc)


def test_round_trip(tmp_path: Path) -> None:
    doc = good_doc()
    path = tmp_path / "p.json"
    digest = write_policy_file(doc, path)
    loaded = load_policy_file(path, now=NOW + HOUR_MS)
    assert loaded.hash == digest == document_hash(read_document(path))
    assert loaded.symbols == ("BTC-USDT", "ETH-USDT")
    assert loaded.universe == ("BTC-USDT", "ETH-USDT")
    assert loaded.value("BTCUSDT", "leverage") == 7.5
    assert loaded.value("btc/usdt:USDT", "size_pct") == 0.12
    assert loaded.value("ETH_USDT", "harvest_t1_r") == 2.0
    assert loaded.values_for("BTC-USDT") == pytest.approx(
        {
            "leverage": 7.5, "size_pct": 0.12, "stop_loss_pct": 0.02, "take_profit_pct": 0.06,
            "harvest_t1_r": 1.5, "harvest_t2_r": 2.5, "harvest_t3_r": 4.5, "harvest_lock_r": 1.0,
            "harvest_t1_close_frac": 0.4, "harvest_t2_close_frac": 0.5, "kill_threshold": 0.6,
            "kill_reduce_threshold": 0.5, "kill_reduce_frac": 0.25, "max_hold_sec": 86_400.0,
        }
    )  # fmt: skip
    assert loaded.values_for("SOL-USDT") is None  # skipped: left out, fail closed
    assert read_document(path)["source"]["omitted"]["SOL-USDT"].startswith("LOW_CONFIDENCE")
    # same content, same bytes: the file is canonical
    again = tmp_path / "q.json"
    write_policy_file(doc, again)
    assert again.read_bytes() == path.read_bytes()


def test_version_names_the_content_not_the_time() -> None:
    a = good_doc()
    b = build_document(
        [entry("BTC-USDT", 7.5, 0.12), entry("ETH-USDT", 3.0, 0.05, t1=2.0)],
        kind="ai", policy="ai", model_version="set-1", created_ms=NOW + HOUR_MS,
        valid_for_ms=24 * HOUR_MS, as_of_ms=NOW,
    )  # fmt: skip
    assert a["version"].startswith("20261125T150000Z-")
    assert b["version"].startswith("20261125T160000Z-")
    assert a["version"][-8:] != b["version"][-8:]  # b has no omitted SOL-USDT: other content


def test_stale_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    write_policy_file(good_doc(), path)
    with pytest.raises(PolicyFileStale, match="valid_until: 2026-11-26T15:00:00Z is in the past"):
        load_policy_file(path, now=NOW + 25 * HOUR_MS)
    assert PolicyFileStale.skip_reason is SkipReason.MODEL_STALE


def test_missing_unreadable_and_tampered_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileMissing, match="does not exist"):
        load_policy_file(tmp_path / "nope.json", now=NOW)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PolicyFileCorrupt, match="not valid JSON"):
        load_policy_file(bad, now=NOW)
    path = tmp_path / "p.json"
    write_policy_file(good_doc(), path)
    text = path.read_text().replace('"leverage": 7.5', '"leverage": 9.5')
    path.write_text(text)
    with pytest.raises(PolicyFileCorrupt, match="hash: does not match"):
        load_policy_file(path, now=NOW)
    path.write_text(text.replace("9.5", "NaN"))
    with pytest.raises(PolicyFileCorrupt, match="NaN is not a JSON number"):
        load_policy_file(path, now=NOW)


def mutate(doc: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(doc)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


DELETE = object()

# (mutation, expected problem kind, text the message must contain, whether the JSON Schema alone
# sees it: cross-field rules are the validator's); every document is re-sealed, so the problem
# found is the mutation and not the hash
BAD = [
    ("schema", "qctl.policy/v2", "schema", "this qctl reads", True),
    ("limits", DELETE, "schema", "limits: missing", True),
    ("extra", 1, "schema", "extra: unknown field", True),
    ("source.kind", "robot", "schema", "source.kind", True),
    ("valid_until", "tomorrow", "schema", "not a UTC time", True),
    ("universe.count", 5, "schema", "universe.count: is 5", False),
    ("symbols.BTC-USDT.leverage", "7", "schema", "not a finite number", True),
    ("symbols.BTC-USDT.leverage", True, "schema", "not a finite number", True),
    ("symbols.BTC-USDT.T1_R", 2.0, "schema", "unknown policy key", True),
    ("symbols.btc-usdt", {"leverage": 2.0}, "schema", "not BASE-QUOTE", True),
    ("symbols.BTC-USDT.leverage", 126.0, "bounds", "leverage: 126 outside [1, 125]", True),
    ("symbols.BTC-USDT.leverage", 0.5, "bounds", "outside [1, 125]", True),
    ("symbols.BTC-USDT.size_pct", 0.51, "bounds", "size_pct: 0.51 outside (0, 0.5]", True),
    ("symbols.BTC-USDT.size_pct", 0.0, "bounds", "size_pct: 0 outside (0, 0.5]", True),
    ("symbols.BTC-USDT.stop_loss_pct", 1.0, "bounds", "stop_loss_pct: 1 outside (0, 1)", True),
    ("symbols.BTC-USDT.harvest_t1_r", 0.4, "bounds", "harvest_t1_r: 0.4 outside [0.5, 10]", True),
    ("symbols.BTC-USDT.harvest_t2_r", 1.5, "bounds", "ladder not strictly ascending", False),
    (
        "symbols.BTC-USDT.kill_threshold",
        0.95,
        "bounds",
        "kill_threshold: 0.95 outside [0.3, 0.9]",
        True,
    ),
    (
        "symbols.BTC-USDT.harvest_t1_close_frac",
        0.0,
        "bounds",
        "harvest_t1_close_frac: 0 outside (0, 1]",
        True,
    ),
    (
        "symbols.BTC-USDT.harvest_t2_close_frac",
        1.2,
        "bounds",
        "harvest_t2_close_frac: 1.2 outside (0, 1]",
        True,
    ),
    (
        "symbols.BTC-USDT.kill_reduce_frac",
        0.0,
        "bounds",
        "kill_reduce_frac: 0 outside (0, 1)",
        True,
    ),
    (
        "symbols.BTC-USDT.kill_reduce_frac",
        1.0,
        "bounds",
        "kill_reduce_frac: 1 outside (0, 1)",
        True,
    ),
    (
        "symbols.BTC-USDT.kill_reduce_threshold",
        0.65,
        "bounds",
        "kill_reduce_threshold: 0.65 above kill_threshold 0.6",
        False,
    ),
    (
        "symbols.BTC-USDT.kill_reduce_threshold",
        0.25,
        "bounds",
        "kill_reduce_threshold: 0.25 outside [0.3, 0.9]",
        True,
    ),
    ("symbols.BTC-USDT.max_hold_sec", 0.0, "bounds", "max_hold_sec: 0 outside (0, inf)", True),
    (
        "symbols.BTC-USDT.max_hold_sec",
        -3600,
        "bounds",
        "max_hold_sec: -3600 outside (0, inf)",
        True,
    ),
    ("symbols.BTC-USDT.max_hold_sec", "24h", "schema", "max_hold_sec: not a finite number", True),
    ("limits.max_leverage", 200.0, "bounds", "looser than the hard limit", True),
    ("limits.min_margin_ratio_pct", 5.0, "bounds", "looser than the hard limit", True),
    ("zone.max_size_pct", 0.8, "bounds", "wider than the owner's", True),
    ("zone.max_kill_threshold", 0.95, "bounds", "wider than the owner's", True),
]


@pytest.mark.parametrize(
    ("dotted", "value", "kind", "text", "in_schema"),
    BAD,
    ids=[b[0] + ("=<deleted>" if b[1] is DELETE else "=" + repr(b[1])) for b in BAD],
)
def test_bad_documents_are_refused_precisely(dotted, value, kind, text, in_schema) -> None:
    doc = mutate(good_doc(), dotted, value)
    if "created_at" in doc:
        doc = resealed(doc)
    problems = check_document(doc, now=NOW)
    assert problems, "accepted"
    assert problems[0].kind == kind
    assert text in str(problems[0])


def test_file_limits_narrow_the_bounds() -> None:
    """A file that says max_leverage 5 may not carry 7.5x, though 125 is the hard limit."""
    doc = resealed(mutate(good_doc(), "limits.max_leverage", 5.0))
    problems = check_document(doc, now=NOW)
    assert [str(p) for p in problems] == ["symbols.BTC-USDT.leverage: 7.5 outside [1, 5]"]


def test_reader_limits_narrow_the_bounds() -> None:
    problems = check_document(good_doc(), now=NOW, limits=SafetyLimits(max_position_size_pct=10))
    assert [str(p) for p in problems] == ["symbols.BTC-USDT.size_pct: 0.12 outside (0, 0.1]"]


def test_writer_refuses_a_bad_document_and_leaves_no_file(tmp_path: Path) -> None:
    doc = resealed(mutate(good_doc(), "symbols.BTC-USDT.leverage", 300.0))
    path = tmp_path / "p.json"
    with pytest.raises(PolicyFileOutOfBounds, match="refusing to write"):
        write_policy_file(doc, path)
    assert list(tmp_path.iterdir()) == []


def test_build_leaves_out_values_the_file_cannot_carry() -> None:
    flat = entry("XRP-USDT", 2.0, 0.05).with_changes(harvest=HarvestLadder(10.0, 10.0, 10.0, 1.0))
    doc = build_document(
        [flat, entry("BTC-USDT", 2.0, 0.05)], kind="ai", policy="ai", created_ms=NOW,
        valid_for_ms=HOUR_MS,
    )  # fmt: skip
    assert list(doc["symbols"]) == ["BTC-USDT"]
    assert "not strictly ascending" in doc["source"]["omitted"]["XRP-USDT"]


def test_schema_and_validator_agree() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = good_doc()
    assert not list(validator.iter_errors(good))
    assert not check_document(good, now=NOW)
    for dotted, value, _, _, in_schema in BAD:
        doc = mutate(good, dotted, value)
        if "created_at" in doc:
            doc = seal(doc)
        assert bool(list(validator.iter_errors(doc))) == in_schema, (dotted, value)
        assert check_document(doc, now=NOW), (dotted, value)


def test_schema_bounds_are_the_owners_limits() -> None:
    """The numbers in policy_schema.json are SafetyLimits / AutonomyZone defaults, not new ones."""
    schema = json.loads(SCHEMA_PATH.read_text())
    limits, zone = SafetyLimits(), AutonomyZone()
    lp = schema["properties"]["limits"]["properties"]
    assert lp["max_leverage"]["maximum"] == limits.max_leverage
    assert lp["max_position_size_pct"]["maximum"] == limits.max_position_size_pct
    assert lp["max_total_exposure_pct"]["maximum"] == limits.max_total_exposure_pct
    assert lp["min_margin_ratio_pct"]["minimum"] == limits.min_margin_ratio_pct
    values = schema["$defs"]["symbol_values"]["properties"]
    assert set(values) == set(SYMBOL_KEYS)
    assert values["leverage"]["minimum"] == zone.min_leverage
    assert values["leverage"]["maximum"] == zone.max_leverage
    assert values["size_pct"]["maximum"] == zone.max_size_pct
    assert values["harvest_t1_r"]["minimum"] == zone.min_harvest_r
    assert values["harvest_t1_r"]["maximum"] == zone.max_harvest_r
    assert values["kill_threshold"]["minimum"] == zone.min_kill_threshold
    assert values["kill_threshold"]["maximum"] == zone.max_kill_threshold
    assert values["kill_reduce_threshold"]["minimum"] == zone.min_kill_threshold
    assert values["kill_reduce_threshold"]["maximum"] == zone.max_kill_threshold


def test_shipped_example_is_valid_and_hand_edits_need_a_seal(tmp_path: Path) -> None:
    doc = read_document(EXAMPLE)
    assert doc["source"]["kind"] == "manual"
    assert not check_document(doc, now=parse_utc(doc["created_at"]))
    jsonschema.validate(doc, load_schema())
    edited = copy.deepcopy(doc)
    edited["symbols"]["BTC-USDT"]["leverage"] = 6.0
    assert check_document(edited, now=None)[0].kind == "hash"
    assert not check_document(seal(edited), now=None)


def test_policy_document_from_static_policy() -> None:
    """Any Policy can publish: StaticPolicy's legacy values, at a refresh bar of the sample."""
    from engine.backtest import default_policy_path
    from engine.core.policy import StaticPolicy
    from engine.policy_file import last_entries
    from engine.venues.candle_files import load_market_data, sample_data_dir

    md = load_market_data(sample_data_dir(), symbols=["BTC-USDT", "ETH-USDT"],
                          start_ms=1_777_000_000_000, end_ms=1_778_500_000_000)  # fmt: skip
    policy = StaticPolicy.from_toml(default_policy_path())
    decisions = last_entries(policy, md, Portfolio(wallet_balance=10_000.0))
    assert decisions, "the legacy policy entered somewhere in this window"
    doc = build_document(decisions, kind="static", policy=policy.name, valid_for_ms=HOUR_MS)
    assert not check_document(doc, now=None)
    for values in doc["symbols"].values():
        assert values["leverage"] == policy.config.leverage
        assert math.isclose(values["size_pct"], policy.config.notional_usdt / 10_000.0)
        # the legacy partial-close fractions, graded kill and time exit are published too
        assert (values["harvest_t1_close_frac"], values["harvest_t2_close_frac"]) == (0.3, 0.3)
        assert (values["kill_reduce_threshold"], values["kill_reduce_frac"]) == (0.55, 0.5)
        assert values["max_hold_sec"] == 86_400.0


def test_errors_share_one_base_class() -> None:
    for cls in (PolicyFileMissing, PolicyFileCorrupt, PolicyFileStale, PolicyFileOutOfBounds):
        assert issubclass(cls, PolicyFileError)


class _Signals:
    """An inner policy that only picks sides (its own numbers are placeholders to be replaced)."""

    name, version = "signals", "1"

    def __init__(self, ts: int) -> None:
        self.ts = ts

    def decide(self, snapshot, portfolio):
        return [
            Decision(
                ts=self.ts,
                symbol=s,
                side=Side.SHORT,
                leverage=1.0,
                size_pct=0.01,
                stop_loss_pct=0.5,
                kill_threshold=0.5,
            )  # fmt: skip
            for s in ("BTC-USDT", "DOGE-USDT")
        ]


def test_file_policy_takes_values_from_the_file(tmp_path: Path) -> None:
    from engine.domain import MarketSnapshot
    from engine.policy_file import FilePolicy

    path = tmp_path / "p.json"
    write_policy_file(good_doc(), path)
    snap = MarketSnapshot.from_windows(NOW + HOUR_MS, HOUR_MS, {})
    policy = FilePolicy(_Signals(snap.ts), path)
    btc, doge = policy.decide(snap, Portfolio(wallet_balance=1.0))
    assert (btc.side, btc.leverage, btc.size_pct, btc.harvest.t1_r) == (Side.SHORT, 7.5, 0.12, 1.5)
    assert (btc.harvest.t1_close_frac, btc.harvest.t2_close_frac) == (0.4, 0.5)
    assert (btc.kill_reduce_threshold, btc.kill_reduce_frac, btc.max_hold_sec) == (
        0.5,
        0.25,
        86_400.0,
    )
    assert btc.model_version == read_document(path)["version"]
    assert doge.skip is SkipReason.NOT_IN_UNIVERSE
    late = MarketSnapshot.from_windows(NOW + 48 * HOUR_MS, HOUR_MS, {})
    policy.inner = _Signals(late.ts)
    assert {d.skip for d in policy.decide(late, Portfolio(wallet_balance=1.0))} == {
        SkipReason.MODEL_STALE
    }
    path.write_text("{}")  # replaced on disk: re-read, refused
    policy.inner = _Signals(snap.ts)
    assert {d.skip for d in policy.decide(snap, Portfolio(wallet_balance=1.0))} == {
        SkipReason.MODEL_CORRUPT
    }


@pytest.mark.parametrize(
    ("removed", "missing"),
    [
        (("max_hold_sec",), "max_hold_sec"),
        (("kill_reduce_threshold",), "kill_reduce_threshold"),
        (("kill_reduce_frac",), "kill_reduce_frac"),
        (("harvest_t2_close_frac",), "harvest_t2_close_frac"),  # part of a ladder is no ladder
    ],
)
def test_file_policy_skips_when_the_file_lacks_an_exit_value(
    tmp_path: Path, removed: tuple[str, ...], missing: str
) -> None:
    from engine.domain import MarketSnapshot
    from engine.policy_file import FilePolicy

    doc = good_doc()
    for key in removed:
        del doc["symbols"]["BTC-USDT"][key]
    path = tmp_path / "p.json"
    write_policy_file(seal(doc), path)
    snap = MarketSnapshot.from_windows(NOW + HOUR_MS, HOUR_MS, {})
    btc, _ = FilePolicy(_Signals(snap.ts), path).decide(snap, Portfolio(wallet_balance=1.0))
    assert btc.skip is SkipReason.MISSING_VALUE and missing in btc.skip_detail
