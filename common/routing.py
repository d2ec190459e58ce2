"""Which shard serves a partition (a stable hash of its path), and which leaves a query may be."""

import zlib
from collections.abc import Sequence

BELIEF = 0.1  # a leaf at least this probable counts as what a query may be


def shard_of(partition: str, shards: Sequence[str]) -> str:
    """The address of the shard that holds `partition`, the same in every process."""
    return shards[zlib.crc32(partition.encode()) % len(shards)]
