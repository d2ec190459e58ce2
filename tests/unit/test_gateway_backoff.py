"""The gateway's back-off across partitions, against an in-memory fake of the cluster's clients."""

import asyncio
from collections.abc import Sequence

import numpy as np

from common.config import ClusterConfig
from gateway.clients import Embedded, Item, LeafProbs, Neighbour, Ranked, TreeView
from gateway.follower import TreeFollower
from gateway.search import Gateway

SANDALS = "Footwear/Sandal/Sandals"
FLIPS = "Footwear/Flip Flops/Flip Flops"
PATHS = ["Footwear", "Footwear/Sandal", SANDALS, "Footwear/Flip Flops", FLIPS]


class FakeCluster:
    """Two partitions: Footwear/Sandal with two items, Footwear/Flip Flops with three."""

    def __init__(self, related: list[tuple[str, str]]) -> None:
        self.related = related
        self.searched: list[list[str]] = []
        self.held = {
            "Footwear/Sandal": [Neighbour("s1", 0.9, SANDALS), Neighbour("s2", 0.8, SANDALS)],
            "Footwear/Flip Flops": [Neighbour(f"f{i}", 0.7, FLIPS) for i in range(3)],
        }

    async def embed(
        self, images: Sequence[bytes], top: int, timeout: float
    ) -> tuple[str, list[Embedded]]:
        return "v1", [Embedded(np.ones(4, np.float32), [(SANDALS, 0.95)], None) for _ in images]

    async def tree(self, timeout: float, wait_for_ready: bool = False) -> TreeView:
        return TreeView(3, PATHS, self.related)

    async def search(
        self, shard: str, query: np.ndarray, partitions: Sequence[str], k: int,
        exclude: Sequence[str], timeout: float,
    ) -> list[Neighbour]:  # fmt: skip
        self.searched.append(list(partitions))
        return [n for p in partitions for n in self.held[p]]

    async def rerank(
        self, leaves: LeafProbs, candidates: Sequence[Neighbour], k: int,
        categories: Sequence[str], timeout: float,
    ) -> list[Ranked]:  # fmt: skip
        ordered = sorted(candidates, key=lambda c: -c.score)[:k]
        return [Ranked(Item(c.item_id, c.leaf), c.score, c.score, 0) for c in ordered]


def _search(related: list[tuple[str, str]], k: int) -> tuple[FakeCluster, list[str], list[str]]:
    async def run() -> tuple[FakeCluster, list[str], list[str]]:
        cluster = FakeCluster(related)
        follower = TreeFollower(cluster)  # type: ignore[arg-type]
        follower.view = await cluster.tree(1.0)
        gateway = Gateway(cluster, ClusterConfig(), follower)  # type: ignore[arg-type]
        result = await gateway.search_by_image(b"photo", k, [])
        return cluster, [r.item.id for r in result.results], result.partitions

    return asyncio.run(run())


def test_fewer_than_k_widens_to_the_partitions_of_related_nodes() -> None:
    cluster, ids, partitions = _search([(SANDALS, FLIPS)], k=4)
    assert partitions == ["Footwear/Sandal", "Footwear/Flip Flops"]
    assert ids == ["s1", "s2", "f0", "f1"]
    assert len(cluster.searched) == 2


def test_enough_neighbours_or_no_related_node_searches_once() -> None:
    cluster, ids, partitions = _search([(SANDALS, FLIPS)], k=2)
    assert (ids, partitions, len(cluster.searched)) == (["s1", "s2"], ["Footwear/Sandal"], 1)
    cluster, ids, partitions = _search([], k=4)
    assert (ids, partitions) == (["s1", "s2"], ["Footwear/Sandal"])
