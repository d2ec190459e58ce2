"""Which node's index serves each node (its partition), which shards hold a partition (the
routing table, else a stable hash of its name), and which leaves a query may be."""

import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from common.feed import Route

BELIEF = 0.1  # a leaf at least this probable counts as what a query may be


def shard_of(partition: str, shards: Sequence[str]) -> str:
    """The address of the shard that holds `partition`, the same in every process."""
    return shards[zlib.crc32(partition.encode()) % len(shards)]


def replicas_of(partition: str, shards: Sequence[str], replicas: int) -> list[str]:
    """The addresses of the shards that hold `partition`: `replicas` of them (at most all),
    starting at its hashed shard and going round; the same in every process."""
    start = shards.index(shard_of(partition, shards))
    count = max(1, min(replicas, len(shards)))
    return [shards[(start + i) % len(shards)] for i in range(count)]


class Routes:
    """Which shards hold each partition: the routing table's rows where it has one, else
    `replicas_of` over the configured shards."""

    def __init__(self, shards: Sequence[str], replicas: int, rows: Iterable[Route] = ()) -> None:
        self.shards = tuple(shards)
        self.replicas = replicas
        self.rows = {str(route.partition_id): route for route in rows}

    def serving(self, partition: str) -> list[str]:
        """The shards searched for `partition`."""
        row = self.rows.get(partition)
        return list(row.serving) if row else replicas_of(partition, self.shards, self.replicas)

    def holders(self, partition: str) -> set[str]:
        """The shards that keep `partition`: those serving it and those building it."""
        row = self.rows.get(partition)
        return {*self.serving(partition), *(row.target if row else ())}

    def update(self, route: Route) -> None:
        self.rows[str(route.partition_id)] = route


@dataclass(frozen=True)
class NodeInfo:
    id: int
    path: str
    parent_id: int
    depth: int
    is_leaf: bool


def partition_map(
    nodes: Iterable[NodeInfo], level: int, split: Collection[int] = ()
) -> dict[int, int]:
    """The partition (a node id) serving each node at or below the partition level.

    A partition is a node at `level`, or a leaf above it; a partition that was split (`split`)
    is served by its children instead, each its own partition (and so on, if split again).
    Nodes above the level are served by several partitions and are not in the map.

    Args:
        nodes: the active nodes, parents before children.
    """
    partition: dict[int, int] = {}
    for node in nodes:
        if node.parent_id in partition:
            partition[node.id] = partition[node.parent_id]
        elif node.id not in split and (node.depth >= level or node.is_leaf):
            partition[node.id] = node.id
    return partition
