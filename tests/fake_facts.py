"""An in-memory stand-in for the record's facts, for tests of edits planned on the tree."""

from collections.abc import Sequence
from dataclasses import replace

from taxonomy_svc.edits import Plan, Recorded, Suggested
from taxonomy_svc.ops import ItemView
from taxonomy_svc.tree import Tree


class FakeFacts:
    """edits.Facts over a dict of items and a list of plans taken as committed."""

    def __init__(self, tree: Tree, leaves: dict[str, str], titles: dict[str, str]) -> None:
        self.items_by_id = {
            i: ItemView(i, tree.id_of(leaf), titles.get(i, "")) for i, leaf in leaves.items()
        }
        self.committed: dict[int, Plan] = {}
        self.open: list[Suggested] = []

    def items_in(self, node_ids: Sequence[int]) -> list[ItemView]:
        return sorted(
            (i for i in self.items_by_id.values() if i.leaf in node_ids), key=lambda i: i.id
        )

    def items(self, item_ids: Sequence[str]) -> list[ItemView]:
        return [self.items_by_id[i] for i in item_ids if i in self.items_by_id]

    def counts_in(self, node_ids: Sequence[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for item in self.items_by_id.values():
            if item.leaf in node_ids:
                counts[item.leaf] = counts.get(item.leaf, 0) + 1
        return counts

    def recorded(self, version: int) -> Recorded:
        plan = self.committed[version]
        return Recorded(version, plan.nodes, plan.moves, plan.related_added, plan.related_removed)

    def suggested(self, path: str) -> list[Suggested]:
        return [group for group in self.open if group.path == path]

    def commit(self, plan: Plan, version: int) -> Tree:
        for move in plan.moves:
            self.items_by_id[move.item_id] = replace(
                self.items_by_id[move.item_id], leaf=move.target
            )
        self.committed[version] = plan
        return plan.tree
