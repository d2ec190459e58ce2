"""An in-memory fake of the gateway's clients (gateway.clients.Cluster), for fast tests of the
gateway's flows: two partitions on two shards, whose failures a test chooses."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.config import ClusterConfig
from common.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ItemFailure,
    Unavailable,
)
from common.routing import NodeInfo, Routes
from gateway.clients import Embedded, Item, LeafProbs, Neighbour, Ranked, StoredVector
from gateway.follower import TreeFollower
from gateway.health import ShardHealth
from gateway.ingest import Writer
from gateway.routing import TreeView
from gateway.search import Gateway

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
UNDECODABLE = b"not an image"  # the fake encoder refuses it, as the real one would


@dataclass
class FakeCluster:
    """Partition 2 (Footwear/Sandal) holds s1, s2; partition 4 (Footwear/Flip Flops) f0..f2.

    A test names shards that are `down` (UNAVAILABLE), `slow` (answer after this many seconds,
    or DEADLINE_EXCEEDED when the call's timeout is shorter), `refusing` (INVALID_ARGUMENT, as
    a shard does for a vector of another width) or `without` (hold no partition: the routing
    moved on). `encoder_down` fails every Embed call.
    """

    related: list[tuple[str, str]] = field(default_factory=list)
    config: ClusterConfig = DEFAULTS
    down: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)
    without: set[str] = field(default_factory=set)
    encoder_down: bool = False
    searched: list[tuple[str, list[str]]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # shards whose search was called off
    recorded: dict[str, Item] = field(default_factory=dict)
    seq: int = 0  # the record's feed position
    held: dict[str, list[Neighbour]] = field(
        default_factory=lambda: {
            "2": [Neighbour("s1", 0.9, SANDALS), Neighbour("s2", 0.8, SANDALS)],
            "4": [Neighbour(f"f{i}", 0.7, FLIPS) for i in range(3)],
        }
    )

    async def embed(
        self, images: Sequence[bytes], top: int, timeout: float
    ) -> tuple[str, list[Embedded]]:
        if self.encoder_down:
            raise Unavailable("encoder: connection refused")
        return "v1", [self._embedded(i, image) for i, image in enumerate(images)]

    def _embedded(self, index: int, image: bytes) -> Embedded:
        if image == UNDECODABLE:
            failure = ItemFailure(index, "", "INVALID_ARGUMENT", "cannot decode the image")
            return Embedded(None, [], failure)
        return Embedded(np.ones(4, np.float32), [(SANDALS, 0.95)], None)

    async def tree(self, timeout: float, wait_for_ready: bool = False) -> TreeView:
        routes = Routes(self.config.shard_addresses, self.config.index.replicas)
        return TreeView.build(3, 30, NODES, {}, self.related, 2, routes)

    async def search(
        self, shard: str, query: np.ndarray, partitions: Sequence[str], k: int,
        exclude: Sequence[str], timeout: float, min_seq: int = 0, within: Sequence[int] = (),
    ) -> tuple[list[Neighbour], list[str]]:  # fmt: skip
        self.searched.append((shard, list(partitions)))
        await self._answer(shard, timeout)
        if shard in self.refusing:
            raise InvalidArgument(f"shard {shard}: the query has 4 floats; the model has 8")
        if shard in self.without:
            return [], list(partitions)
        found = [n for p in partitions for n in self.held[p] if n.item_id not in exclude]
        return found, []

    async def _answer(self, shard: str, timeout: float) -> None:
        """Fails as the shard is set to fail; a slow shard waits, as the real call would."""
        if shard in self.down:
            raise Unavailable(f"shard {shard}: connection refused")
        delay = self.slow.get(shard, 0.0)
        try:
            await asyncio.sleep(min(delay, timeout))
        except asyncio.CancelledError:
            self.cancelled.append(shard)
            raise
        if delay > timeout:
            raise DeadlineExceeded(f"shard {shard}: deadline exceeded")

    async def fetch(
        self, shard: str, ids: Sequence[str], timeout: float, min_seq: int = 0
    ) -> list[StoredVector]:
        await self._answer(shard, timeout)
        return [
            StoredVector(n.item_id, partition, n.leaf, np.ones(4, np.float32), "v1")
            for partition, held in self.held.items()
            for n in held
            if n.item_id in ids
        ]

    async def get_items(self, ids: Sequence[str], timeout: float) -> tuple[list[Item], list[str]]:
        leaves = {n.item_id: n.leaf for held in self.held.values() for n in held}
        return [Item(i, leaves[i]) for i in ids if i in leaves], [i for i in ids if i not in leaves]

    async def put_items(
        self, items: Sequence[Item], timeout: float
    ) -> tuple[list[str], list[ItemFailure], int]:
        if not items:  # as the taxonomy refuses it
            raise InvalidArgument("taxonomy: ids is empty")
        self.recorded.update({item.id: item for item in items})
        self.seq += 1
        return [item.leaf or SANDALS for item in items], [], self.seq

    async def delete_items(self, ids: Sequence[str], timeout: float) -> tuple[int, int]:
        held = [i for i in ids if self.recorded.pop(i, None) is not None]
        self.seq += 1
        return len(held), self.seq

    async def caught_up(self, shard: str, seq: int, timeout: float) -> None:
        await self._answer(shard, timeout)

    async def serving(self, shard: str, timeout: float) -> bool:
        return shard not in self.down and shard not in self.slow

    async def rerank(
        self, leaves: LeafProbs, candidates: Sequence[Neighbour], k: int,
        categories: Sequence[str], timeout: float,
    ) -> list[Ranked]:  # fmt: skip
        if timeout <= 0:
            raise DeadlineExceeded("taxonomy: the deadline passed before the call")
        ordered = sorted(candidates, key=lambda c: -c.score)[:k]
        return [Ranked(Item(c.item_id, c.leaf), c.score, c.score, 0) for c in ordered]


async def gateway(cluster: FakeCluster, probe_s: float = 60.0) -> Gateway:
    """A gateway over the fake, its tree read; shards are probed every `probe_s` once out."""
    follower = TreeFollower(cluster)  # type: ignore[arg-type]
    follower.view = await cluster.tree(1.0)
    health = ShardHealth(cluster.serving, cluster.config.gateway.eject_after, probe_s)
    return Gateway(cluster, cluster.config, follower, health)  # type: ignore[arg-type]


def writer(cluster: FakeCluster) -> Writer:
    return Writer(cluster, cluster.config)  # type: ignore[arg-type]


def failure_codes(failures: Sequence[ItemFailure | object]) -> list[str]:
    return [f.code if isinstance(f, ItemFailure) else "OK" for f in failures]
