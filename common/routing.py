"""Which shard serves a partition: a stable hash of the partition path over the shards."""

import zlib
from collections.abc import Sequence


def shard_of(partition: str, shards: Sequence[str]) -> str:
    """The address of the shard that holds `partition`, the same in every process."""
    return shards[zlib.crc32(partition.encode()) % len(shards)]
