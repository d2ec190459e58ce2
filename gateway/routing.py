"""Which partitions a query searches and which shards hold each: pure functions over the
gateway's view of the tree."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from common import paths
from common.errors import InvalidArgument
from common.routing import NodeInfo, Routes, partition_map


@dataclass(frozen=True)
class TreeView:
    """What the gateway needs of the taxonomy at one version: the paths (old ones resolved),
    each node's partition (a node id), and the related links."""

    version: int
    seq: int
    paths: list[str]
    related: list[tuple[str, str]]
    ids: dict[str, int] = field(default_factory=dict)  # path (current or old) -> node id
    partition: dict[int, int] = field(default_factory=dict)  # node id -> its partition's id
    names: dict[int, str] = field(default_factory=dict)  # node id -> current path
    routes: Routes = field(default_factory=lambda: Routes((), 1))

    @classmethod
    def build(
        cls,
        version: int,
        seq: int,
        nodes: Sequence[NodeInfo],
        old: dict[str, int],
        related: list[tuple[str, str]],
        level: int,
        routes: Routes,
        split: Sequence[int] = (),
    ) -> "TreeView":
        """The view of a tree read with GetTree (`nodes` parents first)."""
        partition = partition_map(nodes, level, split)
        ids = {**old, **{node.path: node.id for node in nodes}}
        names = {node.id: node.path for node in nodes}
        paths_ = [node.path for node in nodes]
        return cls(version, seq, paths_, related, ids, partition, names, routes)

    def subtree(self, path: str) -> list[int]:
        """The ids of a node (old paths resolved) and of every node beneath it; [] for a path
        the tree never had."""
        node = self.ids.get(path)
        if node is None:
            return []
        top = self.names[node]
        return [other for other, name in self.names.items() if paths.is_within(name, top)]

    def partition_of(self, path: str) -> int | None:
        """The partition (node id) serving a node by path, old paths included; None for a
        node above the partition level or a path the tree never had."""
        node = self.ids.get(path)
        return self.partition.get(node) if node is not None else None


def partitions_for_leaves(
    leaf_probs: Sequence[tuple[str, float]], view: TreeView, mass: float, limit: int
) -> list[int]:
    """The partitions holding the most likely leaves, most probable first.

    Partitions are added in order of the probability their leaves hold until that adds up to
    `mass` or `limit` partitions are chosen; the most probable one is always searched. A leaf
    the tree does not know is skipped.
    """
    totals: dict[int, float] = defaultdict(float)
    for leaf, prob in leaf_probs:
        partition = view.partition_of(leaf)
        if partition is not None:
            totals[partition] += prob
    chosen: list[int] = []
    covered = 0.0
    for partition, prob in sorted(totals.items(), key=lambda pair: -pair[1]):
        if chosen and (covered >= mass or len(chosen) >= limit):
            break
        chosen.append(partition)
        covered += prob
    return chosen


def partitions_for_categories(categories: Sequence[str], view: TreeView) -> list[int]:
    """The partitions that serve the named categories, in the order they are named.

    A category above the partition level stands for every partition beneath it; one at or
    below the level for the partition that contains it.

    Raises:
        InvalidArgument: a category the tree does not hold.
    """
    known = set(view.paths)
    chosen: dict[int, None] = {}
    for category in categories:
        if category not in known:
            raise InvalidArgument(f"category {category!r} is not in the taxonomy")
        partition = view.partition_of(category)
        if partition is not None:
            chosen[partition] = None
            continue
        for node, serving in view.partition.items():
            if node == serving and paths.is_within(view.names[node], category):
                chosen[node] = None
    return list(chosen)
