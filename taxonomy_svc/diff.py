"""What changed between two versions of the tree: nodes added, retired, renamed, moved, and
the items the edits between them moved, with a mapping of the old version's node ids."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.errors import NotFound
from taxonomy_svc.tree import Tree


@dataclass
class Diff:
    added: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    renamed: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    items_moved: dict[str, tuple[str, str]] = field(default_factory=dict)  # item: from, to
    id_map: dict[int, int] = field(default_factory=dict)  # old id: where it is now (0: gone)


def compare(old: Tree, new: Tree, effects: Sequence[dict[str, Any]]) -> Diff:
    """Compares two trees; `effects` are the audit log's effects of the edits between them."""
    diff = Diff()
    old_ids, new_ids = set(old.active_ids()), set(new.active_ids())
    diff.added = [i for i in new.active_ids() if i not in old_ids]
    diff.retired = [i for i in old.active_ids() if i not in new_ids]
    for node_id in sorted(old_ids & new_ids):
        before, after = old.node(node_id), new.node(node_id)
        if before.name != after.name:
            diff.renamed.append(node_id)
        if before.parent != after.parent:
            diff.moved.append(node_id)
    for node_id in old.active_ids():
        diff.id_map[node_id] = _resolved(new, node_id)
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for effect in effects:
        for item_id, _, _, source, target in effect["moves"]:
            first.setdefault(item_id, source)
            last[item_id] = target
    diff.items_moved = {i: (first[i], last[i]) for i in sorted(last) if first[i] != last[i]}
    return diff


def _resolved(tree: Tree, node_id: int) -> int:
    try:
        return tree.resolve(node_id)
    except NotFound:
        return 0
