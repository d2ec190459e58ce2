"""The gateway's back-off across partitions and replicas, against an in-memory fake of the
cluster's clients."""

import asyncio

from common.config import ClusterConfig, IndexConfig
from gateway.search import SearchResult
from tests.fake_cluster import FLIPS, SANDALS, FakeCluster, gateway


def _search(cluster: FakeCluster, k: int) -> tuple[SearchResult, list[str]]:
    async def run() -> SearchResult:
        return await (await gateway(cluster)).search_by_image(b"photo", k, [])

    result = asyncio.run(run())
    return result, [r.item.id for r in result.results]


def test_fewer_than_k_widens_to_the_partitions_of_related_nodes() -> None:
    cluster = FakeCluster([(SANDALS, FLIPS)])

    result, ids = _search(cluster, k=4)

    assert result.partitions == ["Footwear/Sandal", "Footwear/Flip Flops"]
    assert ids == ["s1", "s2", "f0", "f1"]
    assert [partitions for _, partitions in cluster.searched] == [["2"], ["4"]]


def test_enough_neighbours_or_no_related_node_searches_once() -> None:
    cluster = FakeCluster([(SANDALS, FLIPS)])
    result, ids = _search(cluster, k=2)
    assert (ids, result.partitions, len(cluster.searched)) == (
        ["s1", "s2"],
        ["Footwear/Sandal"],
        1,
    )

    result, ids = _search(FakeCluster(), k=4)
    assert (ids, result.partitions) == (["s1", "s2"], ["Footwear/Sandal"])


TWO_REPLICAS = ClusterConfig(index=IndexConfig(ports=(7001, 7002), replicas=2))


def test_a_replica_that_fails_is_covered_by_the_next_one() -> None:
    asked_first = []
    for down in TWO_REPLICAS.shard_addresses:
        cluster = FakeCluster(config=TWO_REPLICAS, down={down})

        result, ids = _search(cluster, k=2)

        assert ids == ["s1", "s2"] and not result.partial
        asked_first.append(cluster.searched[0][0] == down)
    assert any(asked_first)  # one of the runs did fail over


def test_a_replica_that_no_longer_holds_the_partition_is_covered_by_the_next_one() -> None:
    for without in TWO_REPLICAS.shard_addresses:
        cluster = FakeCluster(config=TWO_REPLICAS, without={without})

        result, ids = _search(cluster, k=2)

        assert ids == ["s1", "s2"] and not result.partial
    alone = FakeCluster(config=TWO_REPLICAS, without=set(TWO_REPLICAS.shard_addresses))
    result, ids = _search(alone, k=2)
    assert ids == [] and result.partial


def test_when_no_replica_answers_the_search_is_partial() -> None:
    cluster = FakeCluster(config=TWO_REPLICAS, down=set(TWO_REPLICAS.shard_addresses))

    result, ids = _search(cluster, k=2)

    assert ids == [] and result.partial
    assert {shard for shard, _ in cluster.searched} == set(TWO_REPLICAS.shard_addresses)
