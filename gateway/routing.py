"""Which partitions a query searches and which shard holds each: pure functions."""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from common import paths
from common.errors import InvalidArgument
from common.routing import shard_of


def partitions_for_leaves(
    leaf_probs: Sequence[tuple[str, float]], level: int, mass: float, limit: int
) -> list[str]:
    """The partitions holding the most likely leaves, most probable first.

    Partitions are added in order of the probability their leaves hold until that adds up to
    `mass` or `limit` partitions are chosen; the most probable one is always searched.
    """
    totals: dict[str, float] = defaultdict(float)
    for leaf, prob in leaf_probs:
        totals[paths.partition_of(leaf, level)] += prob
    chosen: list[str] = []
    covered = 0.0
    for partition, prob in sorted(totals.items(), key=lambda pair: -pair[1]):
        if chosen and (covered >= mass or len(chosen) >= limit):
            break
        chosen.append(partition)
        covered += prob
    return chosen


def partitions_for_categories(
    categories: Sequence[str], tree_paths: Iterable[str], level: int
) -> list[str]:
    """The partitions that serve the named categories, in the order they are named.

    A category above the partition level stands for every partition beneath it; one at or
    below the level for the partition that contains it.

    Raises:
        InvalidArgument: a category the tree does not hold.
    """
    known = set(tree_paths)
    chosen: dict[str, None] = {}
    for category in categories:
        if category not in known:
            raise InvalidArgument(f"category {category!r} is not in the taxonomy")
        if len(paths.split(category)) >= level:
            chosen[paths.partition_of(category, level)] = None
        else:
            for path in sorted(known):
                if len(paths.split(path)) == level and paths.is_within(path, category):
                    chosen[path] = None
    return list(chosen)


def shard_of_leaf(leaf: str, level: int, shards: Sequence[str]) -> str:
    """The address of the shard whose partition holds `leaf`."""
    return shard_of(paths.partition_of(leaf, level), shards)


def by_shard(partitions: Iterable[str], shards: Sequence[str]) -> dict[str, list[str]]:
    """Groups partitions by the address of the shard that holds them."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for partition in partitions:
        grouped[shard_of(partition, shards)].append(partition)
    return dict(grouped)
