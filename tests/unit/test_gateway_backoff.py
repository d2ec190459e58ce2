"""The gateway's back-off across partitions and replicas, against an in-memory fake of the
cluster's clients."""

import asyncio
from collections.abc import Sequence

import numpy as np

from common.config import ClusterConfig, IndexConfig
from common.errors import Unavailable
from common.routing import NodeInfo, Routes
from gateway.clients import Embedded, Item, LeafProbs, Neighbour, Ranked
from gateway.follower import TreeFollower
from gateway.routing import TreeView
from gateway.search import Gateway, SearchResult

SANDALS = "Footwear/Sandal/Sandals"
FLIPS = "Footwear/Flip Flops/Flip Flops"
NODES = [
    NodeInfo(1, "Footwear", 0, 1, False),
    NodeInfo(2, "Footwear/Sandal", 1, 2, False),
    NodeInfo(3, SANDALS, 2, 3, True),
    NodeInfo(4, "Footwear/Flip Flops", 1, 2, False),
    NodeInfo(5, FLIPS, 4, 3, True),
]
DEFAULTS = ClusterConfig()  # two shards, one replica of each partition


class FakeCluster:
    """Two partitions: node 2 (Footwear/Sandal) with two items, node 4 (Footwear/Flip Flops)
    with three; every shard holds both, and the shards named in `down` do not answer."""

    def __init__(
        self,
        related: list[tuple[str, str]],
        down: Sequence[str] = (),
        config: ClusterConfig = DEFAULTS,
        without: Sequence[str] = (),
    ) -> None:
        self.related = related
        self.config = config
        self.down = set(down)
        self.without = set(without)  # shards that hold no partition (the routing moved on)
        self.searched: list[tuple[str, list[str]]] = []
        self.held = {
            "2": [Neighbour("s1", 0.9, SANDALS), Neighbour("s2", 0.8, SANDALS)],
            "4": [Neighbour(f"f{i}", 0.7, FLIPS) for i in range(3)],
        }

    async def embed(
        self, images: Sequence[bytes], top: int, timeout: float
    ) -> tuple[str, list[Embedded]]:
        return "v1", [Embedded(np.ones(4, np.float32), [(SANDALS, 0.95)], None) for _ in images]

    async def tree(self, timeout: float, wait_for_ready: bool = False) -> TreeView:
        routes = Routes(self.config.shard_addresses, self.config.index.replicas)
        return TreeView.build(3, 30, NODES, {}, self.related, 2, routes)

    async def search(
        self, shard: str, query: np.ndarray, partitions: Sequence[str], k: int,
        exclude: Sequence[str], timeout: float, min_seq: int = 0, within: Sequence[int] = (),
    ) -> tuple[list[Neighbour], list[str]]:  # fmt: skip
        self.searched.append((shard, list(partitions)))
        if shard in self.down:
            raise Unavailable(f"shard {shard} is down")
        if shard in self.without:
            return [], list(partitions)
        return [n for p in partitions for n in self.held[p]], []

    async def rerank(
        self, leaves: LeafProbs, candidates: Sequence[Neighbour], k: int,
        categories: Sequence[str], timeout: float,
    ) -> list[Ranked]:  # fmt: skip
        ordered = sorted(candidates, key=lambda c: -c.score)[:k]
        return [Ranked(Item(c.item_id, c.leaf), c.score, c.score, 0) for c in ordered]


def _search(cluster: FakeCluster, k: int) -> tuple[SearchResult, list[str]]:
    async def run() -> SearchResult:
        follower = TreeFollower(cluster)  # type: ignore[arg-type]
        follower.view = await cluster.tree(1.0)
        gateway = Gateway(cluster, cluster.config, follower)  # type: ignore[arg-type]
        return await gateway.search_by_image(b"photo", k, [])

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

    result, ids = _search(FakeCluster([]), k=4)
    assert (ids, result.partitions) == (["s1", "s2"], ["Footwear/Sandal"])


TWO_REPLICAS = ClusterConfig(index=IndexConfig(ports=(7001, 7002), replicas=2))


def test_a_replica_that_fails_is_covered_by_the_next_one() -> None:
    asked_first = []
    for down in TWO_REPLICAS.shard_addresses:
        cluster = FakeCluster([], down=[down], config=TWO_REPLICAS)

        result, ids = _search(cluster, k=2)

        assert ids == ["s1", "s2"] and not result.partial
        asked_first.append(cluster.searched[0][0] == down)
    assert any(asked_first)  # one of the runs did fail over


def test_a_replica_that_no_longer_holds_the_partition_is_covered_by_the_next_one() -> None:
    for without in TWO_REPLICAS.shard_addresses:
        cluster = FakeCluster([], config=TWO_REPLICAS, without=[without])

        result, ids = _search(cluster, k=2)

        assert ids == ["s1", "s2"] and not result.partial
    alone = FakeCluster([], config=TWO_REPLICAS, without=TWO_REPLICAS.shard_addresses)
    result, ids = _search(alone, k=2)
    assert ids == [] and result.partial


def test_when_no_replica_answers_the_search_is_partial() -> None:
    cluster = FakeCluster([], down=TWO_REPLICAS.shard_addresses, config=TWO_REPLICAS)

    result, ids = _search(cluster, k=2)

    assert ids == [] and result.partial
    assert {shard for shard, _ in cluster.searched} == set(TWO_REPLICAS.shard_addresses)
