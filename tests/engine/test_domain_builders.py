"""The fast constructors of frozen domain objects (`engine.domain.slot_builder`) build the very
objects the dataclasses' own `__init__` builds: same type, equal, same hash, still frozen."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain import (
    Decision,
    Fill,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Side,
    SkipReason,
    build_decision,
    build_fill,
    build_order,
    slot_builder,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
maybe_price = st.none() | st.floats(min_value=1e-9, max_value=1e9)
text = st.text(max_size=12)
sides = st.sampled_from(list(Side))
statuses = st.sampled_from(list(OrderStatus))


def _same(fast: object, slow: object) -> None:
    """Equal field by field (the same objects in every slot), equal, same hash, same type."""
    assert type(fast) is type(slow)
    for f in dataclasses.fields(slow):  # type: ignore[arg-type]
        a, b = getattr(fast, f.name), getattr(slow, f.name)
        assert a == b or (a != a and b != b), f.name
        assert type(a) is type(b), f.name
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert pickle.loads(pickle.dumps(fast)) == slow


def _frozen(obj: object) -> None:
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, f.name, getattr(obj, f.name))
    with pytest.raises((AttributeError, TypeError)):
        obj.extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [Order, Fill, Decision])
def test_builder_sets_every_field_in_order(cls: type) -> None:
    """Distinct values for every field: each lands in its own slot, as `cls(*values)` puts it."""
    values = [object() for _ in dataclasses.fields(cls)]
    build = {Order: build_order, Fill: build_fill, Decision: build_decision}[cls]
    fast, slow = build(*values), cls(*values)
    for f, v in zip(dataclasses.fields(cls), values, strict=True):
        assert getattr(fast, f.name) is v and getattr(slow, f.name) is v
    _frozen(fast)
    with pytest.raises(TypeError):
        build(*values[:-1])  # every field is required, positionally
    with pytest.raises(TypeError):
        build(*values, None)


@given(
    cid=text,
    ts=st.integers(min_value=0, max_value=2**62),
    symbol=text,
    side=sides,
    kind=st.sampled_from(list(OrderType)),
    qty=finite,
    purpose=st.sampled_from([str(p) for p in OrderPurpose]),
    stop=maybe_price,
    reduce_only=st.booleans(),
    status=statuses,
    detail=text,
    new_status=statuses,
    new_detail=text,
    new_qty=finite,
    new_ts=st.integers(min_value=0, max_value=2**62),
)
def test_order_copies_equal_the_dataclass_path(
    cid, ts, symbol, side, kind, qty, purpose, stop, reduce_only, status, detail,
    new_status, new_detail, new_qty, new_ts,
) -> None:  # fmt: skip
    order = Order(cid, ts, symbol, side, kind, qty, purpose, stop, reduce_only, status, detail)
    _same(build_order(cid, ts, symbol, side, kind, qty, purpose, stop, reduce_only, status,
                      detail), order)  # fmt: skip
    _same(
        order.with_status(new_status, new_detail),
        dataclasses.replace(order, status=new_status, detail=new_detail or detail),
    )
    _same(order.resized(new_qty, new_ts), dataclasses.replace(order, qty=new_qty, ts=new_ts))
    _frozen(order.with_status(new_status, new_detail))
    _frozen(order.resized(new_qty, new_ts))


@given(
    run_id=text,
    ts=st.integers(min_value=0, max_value=2**62),
    symbol=text,
    side=sides,
    kind=st.sampled_from(list(OrderType)),
    qty=finite,
    purpose=st.sampled_from([str(p) for p in OrderPurpose]),
    stop=maybe_price,
    reduce_only=st.booleans(),
    seq=st.integers(min_value=0, max_value=10**9),
)
def test_order_create_equals_the_dataclass_path(
    run_id, ts, symbol, side, kind, qty, purpose, stop, reduce_only, seq
) -> None:
    created = Order.create(run_id, ts, symbol, side, kind, qty, purpose, stop, reduce_only, seq)
    cid = created.client_order_id
    assert cid.startswith("qc-") and len(cid) == 27
    slow = Order(
        client_order_id=cid, ts=ts, symbol=symbol, side=side, type=kind, qty=qty,
        purpose=purpose, stop_price=stop, reduce_only=reduce_only,
    )  # fmt: skip
    _same(created, slow)
    assert created.status is OrderStatus.NEW and created.detail == ""
    _frozen(created)


@given(
    cid=text,
    ts=st.integers(min_value=0, max_value=2**62),
    symbol=text,
    side=sides,
    qty=finite,
    price=finite,
    fee=finite,
    is_maker=st.booleans(),
    pnl=finite,
)
def test_fill_builder_equals_the_dataclass_path(
    cid, ts, symbol, side, qty, price, fee, is_maker, pnl
) -> None:
    fast = build_fill(cid, ts, symbol, side, qty, price, fee, is_maker, pnl)
    slow = Fill(cid, ts, symbol, side, qty, price, fee, is_maker=is_maker, realised_pnl=pnl)
    _same(fast, slow)
    _frozen(fast)


@given(
    ts=st.integers(min_value=0, max_value=2**62),
    symbol=text,
    reason=st.sampled_from(list(SkipReason)),
    detail=text,
    policy=text,
    version=text,
    reasons=st.lists(st.tuples(text, finite), max_size=4).map(tuple),
)
def test_skip_equals_the_dataclass_path(ts, symbol, reason, detail, policy, version, reasons):
    fast = Decision.skipped(ts, symbol, reason, detail, policy, version, reasons)
    slow = Decision(
        ts=ts, symbol=symbol, policy=policy, model_version=version, reasons=reasons,
        skip=reason, skip_detail=detail,
    )  # fmt: skip
    _same(fast, slow)
    _frozen(fast)
    assert fast.is_skip and fast.action == "skip"


def test_subclasses_keep_their_own_init() -> None:
    """A subclass may check more in its `__init__`: `create` and `skipped` go through it."""

    @dataclasses.dataclass(frozen=True, slots=True)
    class CheckedOrder(Order):
        def __post_init__(self) -> None:
            if self.qty <= 0:
                raise ValueError("qty must be positive")

    with pytest.raises(ValueError):
        CheckedOrder.create("r", 1, "X", Side.LONG, OrderType.MARKET, -1.0, "entry")
    assert type(CheckedOrder.create("r", 1, "X", Side.LONG, OrderType.MARKET, 1.0, "entry")) is (
        CheckedOrder
    )

    @dataclasses.dataclass(frozen=True, slots=True)
    class CheckedDecision(Decision):
        def __post_init__(self) -> None:
            if not self.symbol:
                raise ValueError("symbol is empty")

    with pytest.raises(ValueError):
        CheckedDecision.skipped(1, "", SkipReason.NO_DATA, "x")
    assert type(CheckedDecision.skipped(1, "X", SkipReason.NO_DATA, "x")) is CheckedDecision


def test_builder_refuses_classes_it_would_weaken() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Validated:
        x: float

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: float

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: float

    @dataclasses.dataclass(frozen=True, slots=True)
    class NotInit:
        x: float
        y: float = dataclasses.field(init=False, default=0.0)

    class Plain:
        __slots__ = ("x",)

    for cls in (Validated, Mutable, NoSlots, NotInit, Plain):
        with pytest.raises(TypeError):
            slot_builder(cls)
