"""A shard's behaviour: per-record validation, partitions, moves, merged search, fetch, stats."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from common.errors import FailedPrecondition, InvalidArgument
from index_svc.record import Record
from index_svc.shard import Shard

DIM = 8
TOPS = "Apparel/Topwear"
SHOES = "Footwear/Shoes"


@pytest.fixture
def shard(tmp_path: Path) -> Iterator[Shard]:
    shard = Shard.open(tmp_path / "shard")
    yield shard
    shard.close()


def _vector(seed: int, dim: int = DIM) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _record(item_id: str, partition: str = TOPS, seed: int = 0, **changes: object) -> Record:
    fields: dict[str, object] = {
        "item_id": item_id,
        "partition": partition,
        "leaf": f"{partition}/Leaf",
        "vector": _vector(seed),
        "model_version": "m1",
    }
    fields.update(changes)
    return Record(**fields)  # type: ignore[arg-type]


def test_a_bad_record_fails_alone_with_its_position_and_reason(shard: Shard) -> None:
    records = [
        _record("ok-1", seed=1),
        _record(""),
        _record("no-partition", partition=""),
        _record("bad-leaf", leaf="Apparel//Tshirts"),
        _record("float64", vector=np.ones(DIM)),
        _record("short", vector=np.ones(DIM - 1, dtype=np.float32)),
        _record("nan", vector=np.full(DIM, np.nan, dtype=np.float32)),
        _record("other-model", model_version="m2"),
        _record("ok-2", seed=2),
    ]

    result = shard.upsert(records)

    assert result.upserted == 2
    failed = {failure.index: failure for failure in result.failures}
    assert sorted(failed) == [1, 2, 3, 4, 5, 6, 7]
    assert failed[1].message == "item_id is empty"
    assert failed[2].message.startswith("partition:")
    assert failed[3].message.startswith("leaf:")
    assert "not a float32 vector" in failed[4].message
    assert "dimension 7" in failed[5].message
    assert "NaN" in failed[6].message
    assert failed[7].code == "FAILED_PRECONDITION" and "'m2'" in failed[7].message
    assert {f.code for i, f in failed.items() if i != 7} == {"INVALID_ARGUMENT"}
    assert shard.fetch(["ok-1", "ok-2", "short"])[1] == ["short"]


def test_the_first_vector_fixes_a_partitions_dimension_and_model(shard: Shard) -> None:
    shard.upsert([_record("a", partition=SHOES, vector=_vector(1, dim=4), model_version="m7")])

    result = shard.upsert([_record("b", partition=SHOES)])

    assert [stat.dim for stat in shard.stats()] == [4]
    assert [stat.model_version for stat in shard.stats()] == ["m7"]
    assert result.upserted == 0 and "holds 4" in result.failures[0].message


def test_an_item_upserted_to_another_partition_leaves_the_old_one(shard: Shard) -> None:
    shard.upsert([_record("a", seed=1), _record("b", seed=2)])

    shard.upsert([_record("a", partition=SHOES, seed=1)])

    counts = {stat.name: stat.count for stat in shard.stats()}
    assert counts == {TOPS: 1, SHOES: 1}
    hits, _ = shard.search(_vector(1), [TOPS, SHOES], 5)
    assert [(hit.item_id, hit.partition) for hit in hits if hit.item_id == "a"] == [("a", SHOES)]


def test_the_last_of_two_records_with_one_id_wins(shard: Shard) -> None:
    result = shard.upsert([_record("a", seed=1), _record("a", partition=SHOES, seed=2)])

    (found,), _ = shard.fetch(["a"])
    assert result.upserted == 2
    assert found.partition == SHOES
    np.testing.assert_allclose(found.vector, _vector(2))
    assert shard.count == 1


def test_search_merges_partitions_best_first_and_reports_missing(shard: Shard) -> None:
    shard.upsert([_record(f"t{i}", seed=i) for i in range(10)])
    shard.upsert([_record(f"s{i}", partition=SHOES, seed=100 + i) for i in range(10)])

    hits, missing = shard.search(_vector(104), [SHOES, TOPS, "Nowhere/Else", SHOES], 6)

    assert missing == ["Nowhere/Else"]
    assert hits[0].item_id == "s4" and hits[0].leaf == f"{SHOES}/Leaf"
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert len(hits) == 6 and {hit.partition for hit in hits} <= {SHOES, TOPS}
    every = shard.search(_vector(104), [SHOES, TOPS], 20)[0]
    assert [hit.item_id for hit in hits] == [hit.item_id for hit in every[:6]]


def test_search_skips_excluded_ids(shard: Shard) -> None:
    shard.upsert([_record(f"t{i}", seed=i) for i in range(10)])

    hits, _ = shard.search(_vector(3), [TOPS], 3, exclude_ids=["t3"])

    assert len(hits) == 3 and "t3" not in {hit.item_id for hit in hits}


def test_search_refuses_bad_k_and_a_query_of_another_model_version(shard: Shard) -> None:
    shard.upsert([_record("a")])

    with pytest.raises(InvalidArgument):
        shard.search(_vector(1), [TOPS], 0)
    with pytest.raises(FailedPrecondition, match="dimension"):
        shard.search(_vector(1, dim=DIM * 2), [TOPS], 3)


def test_delete_counts_items_held_and_fetch_reports_missing(shard: Shard) -> None:
    shard.upsert([_record("a", seed=1), _record("b", partition=SHOES, seed=2)])

    deleted = shard.delete(["a", "b", "a", "never"])

    assert deleted == 2
    assert shard.fetch(["a", "b"]) == ([], ["a", "b"])
    assert {stat.name: stat.count for stat in shard.stats()} == {TOPS: 0, SHOES: 0}


def test_fetch_returns_the_stored_record(shard: Shard) -> None:
    shard.upsert([_record("a", seed=5, leaf=f"{TOPS}/Tshirts", model_version="m1")])

    (record,), missing = shard.fetch(["a"])

    assert missing == []
    assert (record.item_id, record.partition, record.leaf) == ("a", TOPS, f"{TOPS}/Tshirts")
    assert record.model_version == "m1"
    np.testing.assert_allclose(record.vector, _vector(5))
