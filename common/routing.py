"""Which shards serve a partition (a stable hash of its name), and which leaves a query may be."""

import zlib
from collections.abc import Sequence

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
