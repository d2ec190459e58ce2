"""Which shards serve a partition (a stable hash of its name), and which leaves a query may be."""

import zlib
from collections.abc import Iterable, Sequence

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
