"""An edit's effect as the audit log keeps it (JSON), and back: node states, moves, links."""

from typing import Any

from common import paths
from taxonomy_svc.edits import Plan
from taxonomy_svc.tree import Node, Pair, Tree


def describe(plan: Plan, old: Tree, level: int) -> dict[str, Any]:
    """The plan as the audit log keeps it: each node's state before and after with its paths,
    the item moves (id, from, to, from path, to path), the related links added and removed,
    and the partitions whose contents change."""
    new = plan.tree
    nodes = [
        {
            "id": node_id,
            "before": _state(before),
            "after": _state(after),
            "before_path": old.path_of(node_id) if before else "",
            "after_path": new.path_of(node_id),
        }
        for node_id, (before, after) in sorted(plan.nodes.items())
    ]
    moves = [
        [m.item_id, m.source, m.target, old.path_of(m.source), new.path_of(m.target)]
        for m in plan.moves
    ]
    return {
        "nodes": nodes,
        "moves": moves,
        "related_added": sorted(plan.related_added),
        "related_removed": sorted(plan.related_removed),
        "related_paths": {
            f"{a}-{b}": [_any_path(old, new, a), _any_path(old, new, b)]
            for a, b in plan.related_added | plan.related_removed
        },
        "partitions": _partitions(plan, old, level),
        "former_paths": plan.former,
    }


def _partitions(plan: Plan, old: Tree, level: int) -> list[str]:
    """Partitions whose contents change: those items move between, and renamed or moved ones."""
    touched: set[str] = set()
    for move in plan.moves:
        source = paths.partition_of(old.path_of(move.source), level)
        target = paths.partition_of(plan.tree.path_of(move.target), level)
        if source != target:
            touched |= {source, target}
    for node_id, (before, _) in plan.nodes.items():
        if before is None or old.path_of(node_id) == plan.tree.path_of(node_id):
            continue
        for tree in (old, plan.tree):
            if tree.is_active(node_id):
                touched |= {
                    paths.partition_of(tree.path_of(i), level)
                    for i in tree.subtree(node_id)
                    if len(tree.chain(i)) >= level
                }
    return sorted(touched)


def _any_path(old: Tree, new: Tree, node_id: int) -> str:
    return new.path_of(node_id) if new.is_active(node_id) else old.path_of(node_id)


def _state(node: Node | None) -> dict[str, Any] | None:
    if node is None:
        return None
    return {
        "name": node.name,
        "parent": node.parent,
        "archived": node.archived,
        "replaced_by": node.replaced_by,
    }


def node_states(effect: dict[str, Any]) -> dict[int, tuple[Node | None, Node | None]]:
    def node(node_id: int, state: dict[str, Any] | None) -> Node | None:
        return Node(node_id, **state) if state else None

    return {
        n["id"]: (node(n["id"], n["before"]), node(n["id"], n["after"])) for n in effect["nodes"]
    }


def pairs(raw: list[list[int]]) -> set[Pair]:
    return {(a, b) for a, b in raw}
