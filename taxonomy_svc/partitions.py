"""Which partition serves each node of the record's tree, and which items a change of that
moves: pure functions over a Tree (common.routing.partition_map is the one rule)."""

from collections import Counter
from collections.abc import Collection, Mapping

from common.feed import ItemState
from common.routing import NodeInfo, partition_map
from taxonomy_svc.tree import Tree


def of_tree(tree: Tree, level: int, split: Collection[int]) -> dict[int, int]:
    """The partition (node id) serving each active node at or below the partition level."""
    nodes = [
        NodeInfo(
            node_id,
            tree.path_of(node_id),
            tree.node(node_id).parent,
            len(tree.chain(node_id)),
            not tree.child_ids(node_id),
        )
        for node_id in tree.active_ids()
    ]
    return partition_map(nodes, level, split)


def sizes(parts: Mapping[int, int], leaf_of: Mapping[str, int]) -> Counter[int]:
    """Items per partition."""
    return Counter(parts.get(leaf, leaf) for leaf in leaf_of.values())


def placements(
    tree: Tree,
    old: Mapping[int, int],
    new: Mapping[int, int],
    moved: dict[str, int],
    leaf_of: Mapping[str, int],
) -> list[ItemState]:
    """Every item whose leaf (`moved`: item -> its new leaf) or partition (`old` -> `new`)
    changes, where it is now in `tree`."""
    placed = dict(moved)
    repartitioned = {leaf for leaf, part in old.items() if leaf in new and new[leaf] != part}
    if repartitioned:
        placed.update(
            (item_id, leaf)
            for item_id, leaf in leaf_of.items()
            if leaf in repartitioned and item_id not in placed
        )
    return [
        ItemState(item_id, leaf, tree.path_of(leaf), new.get(leaf, leaf))
        for item_id, leaf in sorted(placed.items())
    ]
