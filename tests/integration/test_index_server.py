"""The index shard as a real process following a real taxonomy on loopback: what is put in the
record is found, what is deleted is gone, bad calls are refused, and a restart loses nothing."""

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from protos.visualsearch.v1 import index_pb2, index_pb2_grpc, taxonomy_pb2, taxonomy_pb2_grpc
from tests.shard_server import (
    DIM,
    MODEL,
    PARTITION_OF,
    TREE,
    WAIT_S,
    Cluster,
    delete,
    fetch,
    item,
    put,
    running,
    stats,
    vector,
)
from tests.taxonomy_server import EDITOR, bearer, seed

TSHIRTS, SHIRTS, SHOES = (
    "Apparel/Topwear/Tshirts",
    "Apparel/Topwear/Shirts",
    "Footwear/Shoes/Casual Shoes",
)
TOPWEAR, FOOTWEAR_SHOES = PARTITION_OF[TSHIRTS], PARTITION_OF[SHOES]  # node ids, as strings


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("index")) as started:
        yield started


@pytest.fixture(scope="module")
def record(cluster: Cluster) -> taxonomy_pb2_grpc.TaxonomyStub:
    return cluster.record()


@pytest.fixture(scope="module")
def index(cluster: Cluster) -> index_pb2_grpc.IndexStub:
    return cluster.index()


def _search(
    index: index_pb2_grpc.IndexStub, seed: int, partitions: list[str], min_seq: int, k: int = 10
) -> index_pb2.SearchVectorsResponse:
    request = index_pb2.SearchVectorsRequest(
        query=vector(seed), partitions=partitions, k=k, min_seq=min_seq
    )
    return index.SearchVectors(request, timeout=WAIT_S)  # type: ignore[no-any-return]


def test_items_put_in_the_record_are_searched_fetched_and_counted(
    record: taxonomy_pb2_grpc.TaxonomyStub, index: index_pb2_grpc.IndexStub
) -> None:
    seq = put(
        record,
        [item("a", TSHIRTS, 1), item("b", SHIRTS, 2), item("c", TSHIRTS, 3), item("s", SHOES, 4)],
    )

    found = _search(index, 2, [TOPWEAR, FOOTWEAR_SHOES, "999"], seq, k=2)
    fetched = index.Fetch(index_pb2.FetchRequest(item_ids=["a", "zz"], min_seq=seq), timeout=WAIT_S)
    counted = stats(index, seq)

    assert [n.item_id for n in found.neighbors[:1]] == ["b"] and len(found.neighbors) == 2
    assert (found.neighbors[0].leaf, found.neighbors[0].partition) == (SHIRTS, TOPWEAR)
    assert list(found.missing_partitions) == []  # the only shard: "999" is assigned, empty
    assert [(v.item_id, v.partition, v.leaf) for v in fetched.vectors] == [("a", TOPWEAR, TSHIRTS)]
    assert fetched.vectors[0].vector == vector(1) and fetched.vectors[0].model_version == MODEL
    assert list(fetched.missing_ids) == ["zz"]
    assert counted.seq >= seq and counted.ready and counted.model_version == MODEL
    assert {(p.partition, p.dim) for p in counted.partitions} == {
        (TOPWEAR, DIM),
        (FOOTWEAR_SHOES, DIM),
    }


def test_a_deleted_item_is_neither_found_nor_fetched(
    record: taxonomy_pb2_grpc.TaxonomyStub, index: index_pb2_grpc.IndexStub
) -> None:
    put(record, [item("gone", SHOES, 50), item("kept", SHOES, 51)])
    seq = delete(record, ["gone"])

    found = _search(index, 50, [FOOTWEAR_SHOES], seq)

    assert "gone" not in [n.item_id for n in found.neighbors]
    assert "kept" in [n.item_id for n in found.neighbors]
    assert fetch(index, ["gone", "kept"], seq).keys() == {"kept"}


def test_a_position_not_yet_reached_fails_by_the_deadline_instead_of_answering(
    record: taxonomy_pb2_grpc.TaxonomyStub, index: index_pb2_grpc.IndexStub
) -> None:
    seq = put(record, [item("early", TSHIRTS, 60)])
    request = index_pb2.FetchRequest(item_ids=["early"], min_seq=seq + 1000)

    with pytest.raises(grpc.RpcError) as refused:
        index.Fetch(request, timeout=1.0)

    # The shard stops just short of the caller's deadline and says how far behind it is.
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    assert f"not yet {seq + 1000}" in refused.value.details()


def _query(**fields: object) -> Callable[[index_pb2_grpc.IndexStub], object]:
    def call(index: index_pb2_grpc.IndexStub) -> object:
        fields.setdefault("query", vector(1))
        fields.setdefault("partitions", [TOPWEAR])
        request = index_pb2.SearchVectorsRequest(**fields)  # type: ignore[arg-type]
        return index.SearchVectors(request, timeout=WAIT_S)

    return call


@pytest.mark.parametrize(
    "call",
    [
        _query(k=0),
        _query(k=1001),
        _query(k=3, partitions=[]),
        _query(k=3, query=b"12345"),
        _query(k=3, query=b""),
        _query(k=3, min_seq=-1),
        _query(k=3, query=np.ones(DIM + 1, dtype="<f4").tobytes()),
        _query(k=3, query=np.full(DIM, np.nan, dtype="<f4").tobytes()),
        _query(k=3, query=np.full(DIM, np.inf, dtype="<f4").tobytes()),
        _query(k=3, params=index_pb2.SearchParams(ef_search=1_000_000)),
        _query(k=3, params=index_pb2.SearchParams(refine=-1)),
        _query(k=3, partitions=["Apparel/Topwear"]),
        lambda index: index.SearchBatch(
            index_pb2.SearchBatchRequest(
                queries=[vector(1), vector(2)[:-4]], partitions=[TOPWEAR], k=3
            ),
            timeout=5,
        ),
        lambda index: index.SearchBatch(
            index_pb2.SearchBatchRequest(queries=[], partitions=[TOPWEAR], k=3), timeout=5
        ),
        lambda index: index.Fetch(index_pb2.FetchRequest(item_ids=["a"], min_seq=-1), timeout=5),
        lambda index: index.Stats(index_pb2.StatsRequest(min_seq=-1), timeout=5),
    ],
    ids=[
        "k-zero",
        "k-too-big",
        "no-partitions",
        "query-not-float32",
        "query-empty",
        "search-negative-min-seq",
        "query-of-another-length",
        "query-nan",
        "query-infinite",
        "ef-search-past-its-bound",
        "refine-negative",
        "partition-not-a-node-id",
        "batch-queries-of-two-lengths",
        "batch-no-queries",
        "fetch-negative-min-seq",
        "stats-negative-min-seq",
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    record: taxonomy_pb2_grpc.TaxonomyStub,
    index: index_pb2_grpc.IndexStub,
    call: Callable[[index_pb2_grpc.IndexStub], object],
) -> None:
    before = stats(index, put(record, [item("marker", TSHIRTS, 400)]))  # every write applied
    with pytest.raises(grpc.RpcError) as refused:
        call(index)

    code = refused.value.code()
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), code
    assert stats(index, 0) == before


def test_a_batch_is_answered_per_query_in_order_inside_its_filter(
    record: taxonomy_pb2_grpc.TaxonomyStub, index: index_pb2_grpc.IndexStub
) -> None:
    seq = put(record, [item(f"batch-{n}", [TSHIRTS, SHIRTS][n % 2], 200 + n) for n in range(20)])
    request = index_pb2.SearchBatchRequest(
        queries=[vector(200 + n) for n in range(6)],
        partitions=[TOPWEAR],
        k=3,
        min_seq=seq,
        params=index_pb2.SearchParams(ef_search=32, nprobe=4, refine=2),
    )

    answered = _per_query(index.SearchBatch(request, timeout=WAIT_S))
    request.filter.leaf_ids.append(104)  # Apparel/Topwear/Shirts in TREE
    inside = _per_query(index.SearchBatch(request, timeout=WAIT_S))

    assert [found[0][0] for found in answered] == [f"batch-{n}" for n in range(6)]
    assert all(len(found) == 3 for found in inside)
    assert {leaf for found in inside for _, _, leaf, _ in found} == {SHIRTS}
    assert [found[0][0] for found in inside][1::2] == ["batch-1", "batch-3", "batch-5"]
    assert all(partition == TOPWEAR for found in inside for *_, partition in found)
    for found in answered:  # best first
        assert [score for _, score, _, _ in found] == sorted(
            (s for _, s, _, _ in found), reverse=True
        )


def _per_query(answer: index_pb2.SearchBatchResponse) -> list[list[tuple[str, float, str, str]]]:
    """A batch's columns as (item id, score, leaf, partition) per query."""
    rows = list(
        zip(
            answer.item_ids,
            np.frombuffer(answer.scores, dtype="<f4").tolist(),
            answer.leaves,
            answer.partitions,
            strict=True,
        )
    )
    ends = np.cumsum(answer.counts).tolist()
    return [rows[end - count : end] for count, end in zip(answer.counts, ends, strict=True)]


def test_stats_show_each_partitions_spec_and_its_tombstones(
    record: taxonomy_pb2_grpc.TaxonomyStub, index: index_pb2_grpc.IndexStub
) -> None:
    seq = put(record, [item("stone", SHOES, 300)])
    before = {p.partition: p for p in stats(index, seq).partitions}[FOOTWEAR_SHOES]
    seq = delete(record, ["stone"])

    after = {p.partition: p for p in stats(index, seq).partitions}[FOOTWEAR_SHOES]

    assert after.spec == "Flat"  # a few items: exact search
    assert (after.count, after.tombstones) == (before.count - 1, before.tombstones + 1)


def _fill(cluster: Cluster, first: int, count: int) -> tuple[int, dict[str, bytes]]:
    """Puts `count` items spread over the leaves; the seq and each id's vector."""
    leaves = [TSHIRTS, SHIRTS, SHOES]
    items = [item(f"i{n}", leaves[n % 3], n) for n in range(first, first + count)]
    return put(cluster.record(), items), {i.id: i.vector for i in items}


def test_a_stopped_shard_restores_its_snapshot_and_follows_on(tmp_path: Path) -> None:
    with running(tmp_path) as cluster:
        seq, vectors = _fill(cluster, 0, 30)
        assert fetch(cluster.index(), list(vectors), seq) == vectors
        assert cluster.shard.stop() == 0
        assert (cluster.shard_dir / f"snapshot-{seq:012d}" / "MANIFEST").is_file()

        cluster.shard.start()
        index = cluster.index()
        restored = fetch(index, list(vectors), seq)
        later, more = _fill(cluster, 30, 5)

        assert restored == vectors
        assert fetch(index, [*vectors, *more], later) == {**vectors, **more}
        assert re.search(rf"restored 30 vectors at seq {seq} ", cluster.shard.output())
        assert not re.search(r"built \d+ vectors", cluster.shard.output())  # not from a scan


def test_a_shard_restarted_while_the_taxonomy_is_down_serves_its_snapshot(tmp_path: Path) -> None:
    with running(tmp_path) as cluster:
        seq, vectors = _fill(cluster, 0, 12)
        assert fetch(cluster.index(), list(vectors), seq) == vectors
        cluster.shard.stop()
        cluster.taxonomy.stop()

        cluster.shard.start()
        assert fetch(cluster.index(), list(vectors), seq) == vectors  # no record to ask

        cluster.taxonomy.start()
        later, more = _fill(cluster, 12, 3)
        assert fetch(cluster.index(), [*vectors, *more], later) == {**vectors, **more}


def test_a_killed_shard_catches_up_with_what_it_missed(tmp_path: Path) -> None:
    with running(tmp_path, VS_INDEX_SNAPSHOT_EVERY="7") as cluster:
        seq, vectors = _fill(cluster, 0, 20)
        for n in range(20, 30):  # one commit each, so that snapshots are written on the way
            seq, one = _fill(cluster, n, 1)
            vectors.update(one)
        assert fetch(cluster.index(), list(vectors), seq) == vectors
        cluster.shard.kill()
        record = cluster.record()
        delete(record, ["i3", "i4"])
        latest, missed = _fill(cluster, 30, 10)

        cluster.shard.start()
        held = fetch(cluster.index(), [*vectors, *missed], latest)

        expected = {**vectors, **missed}
        del expected["i3"], expected["i4"]
        assert held == expected


def test_a_split_partition_moves_its_vectors_to_its_children(tmp_path: Path) -> None:
    """TREE's Topwear (102) splits into Tshirts (103) and Shirts (104); the old id answers,
    whole, until the grace is over."""
    with running(tmp_path, VS_INDEX_DRAIN_GRACE_S="3") as cluster:
        seq, vectors = _fill(cluster, 0, 9)  # three leaves: Tshirts, Shirts, Shoes
        topwear = sorted(i for n, i in enumerate(vectors) if n % 3 != 2)
        split = cluster.record().SplitPartition(
            taxonomy_pb2.NodeRef(path="Apparel/Topwear"), timeout=10, metadata=bearer(EDITOR)
        )
        assert (sorted(split.partitions), split.items_moved) == ([103, 104], 6)

        index = cluster.index()
        tshirts = _search(index, 0, ["103"], split.seq).neighbors
        assert sorted(n.item_id for n in tshirts) == ["i0", "i3", "i6"]
        old = _search(index, 0, [TOPWEAR], split.seq).neighbors
        assert sorted(n.item_id for n in old) == topwear
        assert fetch(index, list(vectors), split.seq) == vectors
        deadline = time.monotonic() + 15  # the grace, and the follower's next look at it
        while _search(index, 0, [TOPWEAR], split.seq).neighbors and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(_search(index, 0, [TOPWEAR], split.seq).neighbors) == []
        assert {p.partition: p.count for p in stats(index, seq).partitions if p.count} == {
            "103": 3, "104": 3, FOOTWEAR_SHOES: 3,
        }  # fmt: skip


def test_a_shard_following_a_record_that_was_replaced_rebuilds_from_the_new_one(
    tmp_path: Path,
) -> None:
    """A new database starts a new feed: positions in the old one mean nothing there, even
    where the numbers overlap."""
    with running(tmp_path) as cluster:
        _, old = _fill(cluster, 0, 6)
        cluster.taxonomy.stop()
        for path in tmp_path.glob("taxonomy.sqlite*"):
            path.unlink()
        seed(tmp_path / "taxonomy.sqlite", TREE)
        cluster.taxonomy.start()

        seq, new = _fill(cluster, 100, 9)  # the new feed goes past the shard's old position
        held = fetch(cluster.index(), [*old, *new], seq)

        assert held == new
        assert "rebuilding" in cluster.shard.output()


def _spec(index: index_pb2_grpc.IndexStub, partition: str, min_seq: int = 0) -> str:
    return {p.partition: p.spec for p in stats(index, min_seq).partitions}[partition]


def test_a_partition_is_trained_in_the_background_once_big_enough_and_restored_so(
    tmp_path: Path,
) -> None:
    with running(tmp_path, VS_INDEX_SPEC="IVF16,Flat") as cluster:
        record, index = cluster.record(), cluster.index()
        seq = put(record, [item(f"t{n}", TSHIRTS, n) for n in range(100)])
        assert _spec(index, TOPWEAR, seq) == "Flat"  # too few vectors to train 16 lists
        before = _search(index, 7, [TOPWEAR], seq, k=5)

        seq = put(record, [item(f"t{n}", TSHIRTS, n) for n in range(100, 700)])
        deadline = time.monotonic() + WAIT_S
        while _spec(index, TOPWEAR, seq) != "IVF16,Flat" and time.monotonic() < deadline:
            time.sleep(0.2)

        assert _spec(index, TOPWEAR) == "IVF16,Flat"
        after = _search(index, 7, [TOPWEAR], seq, k=700)  # every list probed: exact
        assert len(after.neighbors) == 700
        assert [n.item_id for n in before.neighbors] == [
            n.item_id for n in after.neighbors if int(n.item_id[1:]) < 100
        ][:5]
        assert cluster.shard.stop() == 0
        cluster.shard.start()

        assert _spec(index, TOPWEAR, seq) == "IVF16,Flat"
        assert re.search(r"restored 700 vectors", cluster.shard.output())
