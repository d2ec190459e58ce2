"""A shard as a projection of the feed: scans, batches of changes, moves, search and fetch."""

from collections.abc import Sequence

import numpy as np
import pytest

from common.errors import InvalidArgument
from common.feed import DELETE, EDIT, ROUTE, SPLIT, UPSERT, Change, ItemState, Route
from index_svc.shard import Neighbor, Shard
from index_svc.specs import Policy

DIM = 8
TOPS, SHOES, ELSEWHERE = 10, 20, 30  # node ids; this shard owns the first two


def _search(
    shard: Shard, vector: np.ndarray, partitions: list[str], k: int, exclude_ids: Sequence[str] = ()
) -> tuple[list[Neighbor], list[str]]:
    """One query's neighbours, and the partitions missing."""
    (hits,), missing = shard.search(vector.reshape(1, -1), partitions, k, exclude_ids=exclude_ids)
    return hits, missing


def _shard(model_version: str = "m1") -> Shard:
    return Shard(Policy(), lambda name: name in {str(TOPS), str(SHOES)}, model_version)


def _vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _state(
    item_id: str, partition: int = TOPS, seed: int | None = 0, model_version: str = "m1"
) -> ItemState:
    """An item's state; seed None: no vector (the change only moved it)."""
    vector = b"" if seed is None else _vector(seed).astype("<f4").tobytes()
    leaf = f"Node{partition}/Leaf"
    return ItemState(item_id, partition + 1, leaf, partition, model_version, vector)


def _upsert(seq: int, item: ItemState) -> Change:
    return Change(seq, UPSERT, item=item, item_id=item.item_id)


def _delete(seq: int, item_id: str) -> Change:
    return Change(seq, DELETE, item_id=item_id)


def _edit(seq: int, *placements: ItemState) -> Change:
    return Change(seq, EDIT, version=seq, placements=placements)


def _held(shard: Shard) -> dict[str, str]:
    """Item id -> the partition holding it, of the ids the tests below use (and nothing
    else is held)."""
    records, _ = shard.fetch(["a", "b", "x", "y"])
    assert sum(stat.count for stat in shard.stats()) == len(records) == shard.count
    return {record.item_id: record.partition for record in records}


def test_a_scan_builds_only_the_owned_partitions_at_its_position() -> None:
    shard = _shard("")
    items = [_state("a", TOPS, 1), _state("b", SHOES, 2), _state("x", ELSEWHERE, 3)]

    shard.reset(7, "m1", items)

    assert _held(shard) == {"a": "10", "b": "20"}
    assert (shard.seq, shard.model_version) == (7, "m1")
    (record,), _ = shard.fetch(["b"])
    assert record.leaf == "Node20/Leaf" and record.model_version == "m1"
    np.testing.assert_allclose(record.vector, _vector(2))


def test_upserts_and_deletes_apply_in_order_and_move_seq_to_the_last() -> None:
    shard = _shard()

    assert shard.apply([_upsert(1, _state("a", TOPS, 1)), _upsert(2, _state("b", SHOES, 2))]) == []
    assert shard.apply([_delete(3, "a"), _delete(4, "never-held")]) == []

    assert _held(shard) == {"b": "20"}
    assert shard.seq == 4


def test_an_upsert_replaces_the_vector_and_place_of_an_item_held() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1))])

    shard.apply([_upsert(2, _state("a", SHOES, 2))])

    assert _held(shard) == {"a": "20"}
    (record,), _ = shard.fetch(["a"])
    np.testing.assert_allclose(record.vector, _vector(2))
    hits, _ = _search(shard, _vector(2), ["10", "20"], 5)
    assert [(hit.item_id, hit.partition) for hit in hits] == [("a", "20")]


def test_a_delete_after_an_upsert_in_one_batch_wins_and_the_reverse_too() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1))])

    shard.apply([_upsert(2, _state("a", SHOES, 2)), _delete(3, "a"), _upsert(4, _state("b"))])
    assert _held(shard) == {"b": "10"}

    shard.apply([_delete(5, "b"), _upsert(6, _state("b", SHOES, 6))])
    assert _held(shard) == {"b": "20"}
    assert shard.seq == 6


def test_an_edit_moves_items_between_owned_partitions_keeping_their_vectors() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1)), _upsert(2, _state("b", TOPS, 2))])

    assert shard.apply([_edit(3, _state("a", SHOES, seed=None))]) == []

    assert _held(shard) == {"a": "20", "b": "10"}
    (record,), _ = shard.fetch(["a"])
    assert record.leaf == "Node20/Leaf"
    np.testing.assert_allclose(record.vector, _vector(1))
    assert shard.seq == 3


def test_an_item_placed_in_a_partition_not_owned_leaves_the_shard() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1)), _upsert(2, _state("b", TOPS, 2))])

    assert shard.apply([_edit(3, _state("a", ELSEWHERE, seed=None))]) == []
    assert shard.apply([_upsert(4, _state("b", ELSEWHERE, 2))]) == []

    assert _held(shard) == {}
    assert _search(shard, _vector(1), ["10"], 5)[0] == []


def test_an_upsert_to_a_partition_not_owned_is_not_held() -> None:
    shard = _shard()

    assert shard.apply([_upsert(1, _state("x", ELSEWHERE, 1))]) == []

    assert _held(shard) == {} and shard.seq == 1


def test_an_item_moved_in_without_its_vector_is_wanted_and_nothing_changes_until_fetched() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1))])
    batch = [
        _upsert(2, _state("b", TOPS, 2)),
        _delete(3, "a"),
        _edit(4, _state("x", SHOES, seed=None)),  # x was held by another shard
    ]

    assert shard.apply(batch) == ["x"]
    assert _held(shard) == {"a": "10"} and shard.seq == 1
    assert shard.apply(batch, fetched=[_state("y", SHOES, 9)]) == ["x"]
    assert _held(shard) == {"a": "10"} and shard.seq == 1

    assert shard.apply(batch, fetched=[_state("x", SHOES, 4)]) == []
    assert _held(shard) == {"b": "10", "x": "20"} and shard.seq == 4
    (record,), _ = shard.fetch(["x"])
    assert record.leaf == "Node20/Leaf"
    np.testing.assert_allclose(record.vector, _vector(4))


def test_an_item_moved_twice_in_a_batch_keeps_the_vector_it_brought() -> None:
    shard = _shard()
    batch = [
        _upsert(1, _state("a", ELSEWHERE, 1)),
        _edit(2, _state("a", TOPS, seed=None)),
        _edit(3, _state("a", SHOES, seed=None)),
    ]

    assert shard.apply(batch) == []

    (record,), _ = shard.fetch(["a"])
    assert record.partition == "20"
    np.testing.assert_allclose(record.vector, _vector(1))


def test_vectors_of_another_model_version_are_ignored() -> None:
    shard = _shard("m1")
    shard.apply([_upsert(1, _state("a", TOPS, 1))])

    shard.apply([_upsert(2, _state("a", SHOES, 2, model_version="m2"))])
    (record,), _ = shard.fetch(["a"])
    assert record.partition == "20" and record.model_version == "m1"
    np.testing.assert_allclose(record.vector, _vector(1))

    fetched_other = [_state("b", TOPS, 3, model_version="m2")]
    assert shard.apply([_upsert(3, _state("b", TOPS, 3, "m2"))], fetched_other) == ["b"]
    assert _held(shard) == {"a": "20"} and shard.seq == 2


def test_the_first_model_version_seen_is_served_when_none_is_configured() -> None:
    shard = _shard("")

    shard.apply([_upsert(1, _state("a", TOPS, 1, model_version="m3"))])
    shard.apply([_upsert(2, _state("a", TOPS, 2, model_version="m4"))])

    assert shard.model_version == "m3"
    assert [(stat.name, stat.model_version) for stat in shard.stats()] == [("10", "m3")]
    (record,), _ = shard.fetch(["a"])
    np.testing.assert_allclose(record.vector, _vector(1))


def test_search_merges_partitions_best_first_and_reports_missing() -> None:
    shard = _shard()
    shard.apply([_upsert(i, _state(f"a{i}", TOPS, i)) for i in range(1, 10)])
    shard.apply([_upsert(10 + i, _state(f"b{i}", SHOES, 100 + i)) for i in range(10)])

    hits, missing = _search(shard, _vector(104), ["20", "10", "30", "20"], 6)

    assert missing == ["30"]
    assert (hits[0].item_id, hits[0].partition, hits[0].leaf) == ("b4", "20", "Node20/Leaf")
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    every, _ = _search(shard, _vector(104), ["10", "20"], 30)
    assert len(every) == 19
    assert [hit.item_id for hit in hits] == [hit.item_id for hit in every[:6]]


def test_search_skips_excluded_ids_and_refuses_a_k_below_one() -> None:
    shard = _shard()
    shard.apply([_upsert(i, _state(f"a{i}", TOPS, i)) for i in range(1, 10)])

    hits, _ = _search(shard, _vector(3), ["10"], 3, exclude_ids=["a3"])

    assert len(hits) == 3 and "a3" not in {hit.item_id for hit in hits}
    with pytest.raises(InvalidArgument):
        _search(shard, _vector(3), ["10"], 0)


def test_fetch_reports_the_ids_not_held() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1))])

    records, missing = shard.fetch(["a", "x", "a"])

    assert [record.item_id for record in records] == ["a", "a"] and missing == ["x"]


def test_a_routing_entry_changes_no_item_but_moves_seq() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1))])

    assert shard.apply([Change(2, ROUTE, route=Route(TOPS, serving=("other:1",)))]) == []

    assert _held(shard) == {"a": "10"} and shard.seq == 2


def test_a_partition_taken_from_a_scan_replaces_only_that_one_and_drop_removes_it() -> None:
    shard = _shard()
    shard.apply([_upsert(1, _state("a", TOPS, 1)), _upsert(2, _state("b", SHOES, 2))])

    shard.take("20", [_state("x", SHOES, 3), _state("y", TOPS, 4)])
    assert _held(shard) == {"a": "10", "x": "20"} and shard.seq == 2

    shard.drop("20")
    assert _held(shard) == {"a": "10"}
    assert _search(shard, _vector(3), ["20"], 3) == ([], [])  # still assigned here: empty


def test_a_split_partition_stays_searchable_whole_until_its_grace_is_over() -> None:
    """Gateways that have not read the split still ask for the old partition: it answers with
    every item it had, while the items go to the children (those owned here)."""
    shard = Shard(Policy(), lambda name: name in {str(TOPS), "11"}, "m1")
    shard.reset(1, "m1", [_state("a", TOPS, 1), _state("b", TOPS, 2)])
    to_owned, to_other = _state("a", 11, None), _state("b", 12, None)

    assert shard.apply([Change(2, SPLIT, split=TOPS, placements=(to_owned, to_other))]) == []

    assert _held(shard) == {"a": "11"}
    assert {n.item_id for n in _search(shard, _vector(1), [str(TOPS)], 5)[0]} == {"a", "b"}
    assert [n.item_id for n in _search(shard, _vector(1), ["11"], 5)[0]] == ["a"]
    assert shard.drop_retired(grace_s=60) == []
    assert shard.drop_retired(grace_s=0) == [str(TOPS)]
    assert _search(shard, _vector(1), [str(TOPS)], 5) == ([], [])  # assigned, so empty
    assert _search(shard, _vector(1), [str(ELSEWHERE)], 5) == ([], [str(ELSEWHERE)])
