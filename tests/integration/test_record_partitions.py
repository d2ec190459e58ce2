"""The record's partitions on real databases: moving one to other shards, splitting one, and
the feed entries that tell the shards (SQLite and PostgreSQL)."""

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from common.errors import FailedPrecondition, InvalidArgument
from common.feed import ROUTE, SPLIT
from taxonomy_svc import ops
from taxonomy_svc.db import make_engine
from taxonomy_svc.items import Incoming
from taxonomy_svc.record import Record

LINES = "Apparel > Topwear > Tshirts\nApparel > Topwear > Shirts\nFootwear > Shoes > Casual\n"
SHARDS = ("10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _record(engine: Engine, split_above: int = 0) -> Record:
    record = Record(sessionmaker(engine), 2, shards=SHARDS, replicas=1, split_above=split_above)
    if not record.version:
        record.apply(ops.Import("lines", LINES), 0, "tester")
    return record


def _items(count: int, leaf: str, start: int = 0) -> list[Incoming]:
    return [
        Incoming(f"i{n}", leaf, vector=np.full(4, n, "<f4").tobytes(), model_version="m")
        for n in range(start, start + count)
    ]


def test_a_move_flips_once_every_target_is_ready_and_survives_a_restart(engine: Engine) -> None:
    record = _record(engine)
    topwear = record.tree.id_of("Apparel/Topwear")
    started = record.move_partition("Apparel/Topwear", [SHARDS[1], SHARDS[2]])
    assert (set(started.target), started.ready) == ({SHARDS[1], SHARDS[2]}, ())
    assert record.changes(record.seq - 1, 10)[0].route == started  # type: ignore[index]
    halfway = record.partition_ready(topwear, SHARDS[1], record.seq)
    assert (halfway.serving, halfway.ready) == (started.serving, (SHARDS[1],))
    done = record.partition_ready(topwear, SHARDS[2], record.seq)
    assert (set(done.serving), done.target) == ({SHARDS[1], SHARDS[2]}, ())
    kinds = [change.kind for change in record.changes(0, 100) or []]
    assert kinds.count(ROUTE) == 3
    assert _record(engine).routes[topwear] == done


def test_bad_moves_are_refused_and_change_nothing(engine: Engine) -> None:
    record = _record(engine)
    seq = record.seq
    with pytest.raises(InvalidArgument, match="configured shards"):
        record.move_partition("Apparel/Topwear", ["10.9.9.9:1"])
    with pytest.raises(FailedPrecondition, match="not a partition"):
        record.move_partition("Apparel", [SHARDS[0]])
    with pytest.raises(FailedPrecondition, match="no move"):
        record.partition_ready(record.tree.id_of("Apparel/Topwear"), SHARDS[0], seq)
    assert (record.seq, record.routes) == (seq, {})


def test_a_split_puts_every_item_in_its_childs_partition(engine: Engine) -> None:
    record = _record(engine)
    record.put_items(
        _items(3, "Apparel/Topwear/Tshirts") + _items(2, "Apparel/Topwear/Shirts", 3), 0
    )
    tshirts, shirts = (record.tree.id_of(f"Apparel/Topwear/{n}") for n in ("Tshirts", "Shirts"))
    made, moved, seq = record.split_partition("Apparel/Topwear")
    assert (sorted(made), moved) == (sorted([tshirts, shirts]), 5)
    (entry,) = record.changes(seq - 1, 10) or []
    assert entry.kind == SPLIT and entry.split == record.tree.id_of("Apparel/Topwear")
    assert {p.item_id: p.partition_id for p in entry.placements} == {
        "i0": tshirts, "i1": tshirts, "i2": tshirts, "i3": shirts, "i4": shirts,
    }  # fmt: skip
    scanned = record.scan([shirts], [], "")
    assert sorted(item.item_id for item in scanned.items) == ["i3", "i4"]
    reopened = _record(engine)
    assert reopened.split == {record.tree.id_of("Apparel/Topwear")}
    assert {i.partition_id for i in reopened.scan([], ["i0"], "").items} == {tshirts}


def test_a_leaf_partition_cannot_split_and_a_split_one_is_no_longer_a_partition(
    engine: Engine,
) -> None:
    record = _record(engine)
    record.split_partition("Apparel/Topwear")
    with pytest.raises(FailedPrecondition, match="not a partition"):
        record.split_partition("Apparel/Topwear")
    with pytest.raises(FailedPrecondition, match="leaf"):
        record.split_partition("Apparel/Topwear/Tshirts")


def test_a_partition_past_split_above_splits_on_its_own(engine: Engine) -> None:
    record = _record(engine, split_above=4)
    record.put_items(_items(4, "Apparel/Topwear/Tshirts"), 0)
    assert record.split == set()
    record.put_items(_items(1, "Apparel/Topwear/Shirts", 4), 0)
    assert record.split == {record.tree.id_of("Apparel/Topwear")}
    assert {i.partition_id for i in record.scan([], ["i4"], "").items} == {
        record.tree.id_of("Apparel/Topwear/Shirts")
    }
