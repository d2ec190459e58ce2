"""Taxonomy edits: what each one changes, worked out on the tree in memory and checked.

`plan(op, tree, facts)` turns an edit into a `Plan` (every node's state before and after,
the items it moves, the related links it adds or removes) and validates the tree that would
result; it changes nothing. The record applies a plan in one transaction.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from common import paths
from common.errors import FailedPrecondition, InvalidArgument, NotFound
from taxonomy_svc import formats
from taxonomy_svc.ops import (
    KINDS,
    RULE_FIELDS,
    Accept,
    AddNode,
    Import,
    ItemView,
    Merge,
    MoveNode,
    Op,
    Reassign,
    Ref,
    Reject,
    Relate,
    Rename,
    Retire,
    Revert,
    Rule,
    Split,
    Unrelate,
)
from taxonomy_svc.tree import ROOT, Node, Pair, Tree, pair


@dataclass(frozen=True, slots=True)
class ItemMove:
    item_id: str
    source: int
    target: int


@dataclass(frozen=True)
class Recorded:
    """A committed edit as the audit log keeps it, for a revert."""

    version: int
    nodes: dict[int, tuple[Node | None, Node | None]]
    moves: list[ItemMove]
    related_added: frozenset[Pair]
    related_removed: frozenset[Pair]


@dataclass(frozen=True)
class Suggested:
    """A group of open suggestions: the proposed path, its kind and the items behind it."""

    path: str
    kind: str  # "new_path" or "disagreement"
    item_ids: list[str]


class Facts(Protocol):
    """What a plan reads beyond the tree: the record's items, edits and suggestions."""

    def items_in(self, node_ids: Sequence[int]) -> list[ItemView]: ...

    def items(self, item_ids: Sequence[str]) -> list[ItemView]: ...

    def counts_in(self, node_ids: Sequence[int]) -> dict[int, int]: ...

    def recorded(self, version: int) -> Recorded: ...

    def suggested(self, path: str) -> list[Suggested]: ...


@dataclass
class Plan:
    """What an edit changes; `tree` is the tree once it is applied."""

    kind: str
    summary: str
    tree: Tree
    nodes: dict[int, tuple[Node | None, Node]] = field(default_factory=dict)  # before, after
    moves: list[ItemMove] = field(default_factory=list)
    related_added: frozenset[Pair] = frozenset()
    related_removed: frozenset[Pair] = frozenset()
    suggestion: tuple[str, str] | None = None  # (path, "accepted" | "rejected")
    reverts: int = 0
    former: dict[str, int] = field(default_factory=dict)  # paths the edit leaves behind


def plan(op: Op, tree: Tree, facts: Facts) -> Plan:
    """Works out and validates what `op` would change in `tree`.

    Raises:
        InvalidArgument: the op is malformed (an empty name, an unknown rule field).
        NotFound: a node, version or suggestion it names does not exist.
        FailedPrecondition: the result would not be a tree, would have two siblings of one
            name, would leave an item outside a leaf, or the op contradicts the tree.
    """
    draft = _Draft(tree, facts, KINDS[type(op)])
    _PLANNERS[type(op)](draft, op)
    return draft.finish()


class _Draft:
    """A plan being built: node states changed so far and items moved so far."""

    def __init__(self, tree: Tree, facts: Facts, kind: str) -> None:
        self.tree = tree
        self.facts = facts
        self.kind = kind
        self.summary = ""
        self.after: dict[int, Node] = {}  # the new state of every node the edit touches
        self.moves: dict[str, ItemMove] = {}
        self.related = set(tree.related)
        self.suggestion: tuple[str, str] | None = None
        self.reverts = 0
        self._next_id = max((n.id for n in tree.all_nodes()), default=0) + 1
        self._created: dict[tuple[int, str], int] = {}  # (parent, name): a node made here

    def ref(self, ref: Ref | None, what: str = "node") -> int:
        """The active node a reference names; ROOT for None."""
        if ref is None or ref == "" or ref == 0:
            return ROOT
        if isinstance(ref, int):
            node = self.tree.node(ref)
            if node.archived:
                raise FailedPrecondition(
                    f"{what} #{ref} ({self.tree.path_of(ref)!r}) is archived"
                    + (f", replaced by #{node.replaced_by}" if node.replaced_by else "")
                )
            return ref
        return self.tree.id_of(ref)

    def state(self, node_id: int) -> Node:
        return self.after[node_id] if node_id in self.after else self.tree.node(node_id)

    def put(self, node: Node) -> None:
        self.after[node.id] = node

    def new_node(self, name: str, parent: int, node_id: int = 0) -> Node:
        node = Node(node_id or self._next_id, _checked_name(name), parent)
        if node.id in self.after or _exists(self.tree, node.id):
            raise FailedPrecondition(f"node id #{node.id} is taken")
        self._next_id = max(self._next_id, node.id + 1)
        self._created[(parent, node.name)] = node.id
        self.put(node)
        return node

    def child(self, parent: int, name: str) -> int:
        """The child of that name, made by this draft or already in the tree; 0 if none."""
        if (parent, name) in self._created:
            return self._created[(parent, name)]
        if parent != ROOT and not self.tree.is_active(parent):
            return 0
        path = paths.join(self.tree.path_of(parent), name) if parent else name
        return self.tree.id_of(path) if self.tree.contains(path) else 0

    def move_items(self, items: Sequence[ItemView], target: int) -> None:
        for item in items:
            source = self.moves[item.id].source if item.id in self.moves else item.leaf
            self.moves[item.id] = ItemMove(item.id, source, target)

    def finish(self) -> Plan:
        states = {n.id: n for n in self.tree.all_nodes()}
        before = {i: states.get(i) for i in self.after}
        states.update(self.after)
        self.related -= {p for p in self.related if states[p[0]].archived or states[p[1]].archived}
        new_tree = Tree(states.values(), self.related, self.tree.former)
        new_tree.check()
        placed = [i for i in self.after if self.tree.is_active(i)]
        former = self.tree.moved_paths(new_tree, placed)
        new_tree.former.update(former)  # before anyone else sees the new tree
        moves = [m for m in self.moves.values() if m.source != m.target]
        _check_items(self.tree, new_tree, self.facts, set(self.after), moves)
        changed = {i: (before[i], self.after[i]) for i in self.after if before[i] != self.after[i]}
        return Plan(
            self.kind,
            self.summary,
            new_tree,
            changed,
            moves,
            frozenset(self.related - self.tree.related),
            frozenset(self.tree.related - self.related),
            self.suggestion,
            self.reverts,
            former,
        )


def _exists(tree: Tree, node_id: int) -> bool:
    try:
        tree.node(node_id)
    except NotFound:
        return False
    return True


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("a node's name is empty")
    if paths.SEP in name or formats.LINE_SEP.strip() in name:
        raise InvalidArgument(f"a node's name cannot hold {paths.SEP!r} or '>': {name!r}")
    return name


def _check_items(
    old: Tree, new: Tree, facts: Facts, touched: set[int], moves: list[ItemMove]
) -> None:
    """Every item must end in an active leaf of the new tree."""
    new_leaves = set(new.leaf_ids())
    for move in moves:
        if move.target not in new_leaves:
            raise FailedPrecondition(
                f"item {move.item_id!r} would go to {new.path_of(move.target)!r}, not a leaf"
            )
    suspects = touched | {old.node(i).parent for i in touched if _exists(old, i)}
    suspects |= {new.node(i).parent for i in touched if _exists(new, i)}
    suspects = {i for i in suspects if i != ROOT and i not in new_leaves}
    if not suspects:
        return
    counts = facts.counts_in(sorted(suspects))
    for move in moves:
        counts[move.source] = counts.get(move.source, 0) - 1
        counts[move.target] = counts.get(move.target, 0) + 1
    for node_id in sorted(suspects):
        if counts.get(node_id, 0) > 0:
            raise FailedPrecondition(
                f"{new.path_of(node_id)!r} would hold {counts[node_id]} items without being "
                "a leaf: move or reassign them first"
            )


def _add(draft: _Draft, op: AddNode) -> None:
    parent = draft.ref(op.parent, "parent")
    node = draft.new_node(op.name, parent, op.id)
    draft.summary = (
        f"add {paths.join(draft.tree.path_of(parent), node.name) if parent else node.name}"
    )


def _rename(draft: _Draft, op: Rename) -> None:
    node_id = draft.ref(op.node)
    old = draft.tree.node(node_id)
    draft.put(replace(old, name=_checked_name(op.name)))
    draft.summary = f"rename {draft.tree.path_of(node_id)!r} to {op.name.strip()!r}"


def _move(draft: _Draft, op: MoveNode) -> None:
    node_id, parent = draft.ref(op.node), draft.ref(op.parent, "parent")
    if parent != ROOT and node_id in draft.tree.chain(parent):
        raise FailedPrecondition(
            f"cannot move {draft.tree.path_of(node_id)!r} under itself "
            f"({draft.tree.path_of(parent)!r})"
        )
    draft.put(replace(draft.tree.node(node_id), parent=parent))
    where = repr(draft.tree.path_of(parent)) if parent else "the top level"
    draft.summary = f"move {draft.tree.path_of(node_id)!r} under {where}"


def _merge(draft: _Draft, op: Merge) -> None:
    node_id, into = draft.ref(op.node), draft.ref(op.into, "into")
    tree = draft.tree
    if node_id == into or node_id in tree.chain(into):
        raise FailedPrecondition(
            f"cannot merge {tree.path_of(node_id)!r} into itself or its own subtree"
        )
    for child in tree.child_ids(node_id):
        draft.put(replace(tree.node(child), parent=into))
    draft.move_items(draft.facts.items_in([node_id]), into)
    draft.put(replace(tree.node(node_id), archived=True, replaced_by=into))
    draft.summary = f"merge {tree.path_of(node_id)!r} into {tree.path_of(into)!r}"


def _split(draft: _Draft, op: Split) -> None:
    leaf = draft.ref(op.leaf, "leaf")
    if not op.children:
        raise InvalidArgument("a split needs at least one new child")
    children = [(draft.new_node(c.name, leaf), _checked_rule(c.rule)) for c in op.children]
    rest = draft.new_node(op.rest, leaf) if op.rest.strip() else None
    targets = [(child.id, rule) for child, rule in children]
    _distribute(draft, leaf, targets, rest.id if rest else None)
    names = ", ".join(child.name for child, _ in children) + (f", {rest.name}" if rest else "")
    draft.summary = f"split {draft.tree.path_of(leaf)!r} into {names}"


def _reassign(draft: _Draft, op: Reassign) -> None:
    node_id = draft.ref(op.node)
    targets = [(draft.ref(t.to, "target"), _checked_rule(t.rule)) for t in op.targets]
    rest = draft.ref(op.rest, "rest") if op.rest not in (None, "", 0) else None
    _distribute(draft, node_id, targets, rest)
    draft.summary = f"reassign the items of {draft.tree.path_of(node_id)!r} by rules"


def _distribute(
    draft: _Draft, node_id: int, targets: list[tuple[int, Rule]], rest: int | None
) -> None:
    items = draft.facts.items_in([node_id])
    for item in items:
        target = next((to for to, rule in targets if rule.matches(item)), rest)
        if target is None:
            raise FailedPrecondition(
                f"item {item.id!r} ({item.title!r}) matches no rule and no rest is named"
            )
        draft.move_items([item], target)


def _checked_rule(rule: Rule) -> Rule:
    if rule.field not in RULE_FIELDS:
        raise InvalidArgument(f"rule field {rule.field!r} is not one of {RULE_FIELDS}")
    if not rule.values or not all(value.strip() for value in rule.values):
        raise InvalidArgument(f"a rule on {rule.field!r} needs non-empty values")
    return rule


def _retire(draft: _Draft, op: Retire) -> None:
    node_id = draft.ref(op.node)
    target = draft.ref(op.items_to, "items_to") if op.items_to not in (None, "", 0) else 0
    subtree = draft.tree.subtree(node_id)
    if target in subtree:
        raise FailedPrecondition("items_to lies in the subtree being retired")
    items = draft.facts.items_in(subtree)
    if items and not target:
        raise FailedPrecondition(
            f"{draft.tree.path_of(node_id)!r} holds {len(items)} items: name items_to"
        )
    draft.move_items(items, target)
    for member in subtree:
        draft.put(replace(draft.tree.node(member), archived=True, replaced_by=target))
    where = f", items to {draft.tree.path_of(target)!r}" if target else ""
    draft.summary = f"retire {draft.tree.path_of(node_id)!r} ({len(subtree)} nodes{where})"


def _relate(draft: _Draft, op: Relate) -> None:
    a, b = draft.ref(op.a), draft.ref(op.b)
    tree = draft.tree
    if a in tree.chain(b) or b in tree.chain(a):
        raise FailedPrecondition("related nodes must lie in different branches")
    if pair(a, b) in draft.related:
        raise FailedPrecondition(f"{tree.path_of(a)!r} and {tree.path_of(b)!r} are related")
    draft.related.add(pair(a, b))
    draft.summary = f"relate {tree.path_of(a)!r} <-> {tree.path_of(b)!r}"


def _unrelate(draft: _Draft, op: Unrelate) -> None:
    a, b = draft.ref(op.a), draft.ref(op.b)
    if pair(a, b) not in draft.related:
        raise FailedPrecondition(
            f"{draft.tree.path_of(a)!r} and {draft.tree.path_of(b)!r} are not related"
        )
    draft.related.discard(pair(a, b))
    draft.summary = f"unrelate {draft.tree.path_of(a)!r} <-> {draft.tree.path_of(b)!r}"


def _revert(draft: _Draft, op: Revert) -> None:
    recorded = draft.facts.recorded(op.version)
    for node_id, (before, after) in recorded.nodes.items():
        current = draft.state(node_id) if _exists(draft.tree, node_id) else None
        if after is None or current != after:
            raise FailedPrecondition(
                f"node #{node_id} changed after version {op.version}: revert the later edits first"
            )
        # What the edit created is archived, not deleted, so that its id still resolves.
        draft.after[node_id] = before or replace(after, archived=True)
    by_target: dict[int, list[ItemMove]] = {}
    for move in recorded.moves:
        by_target.setdefault(move.target, []).append(move)
    for target, moves in by_target.items():
        still = {i.id: i for i in draft.facts.items_in([target])}
        for move in moves:
            if move.item_id in still:
                draft.move_items([still[move.item_id]], move.source)
    draft.related -= recorded.related_added
    draft.related |= recorded.related_removed
    draft.reverts = op.version
    draft.summary = f"revert version {op.version}"


def _accept(draft: _Draft, op: Accept) -> None:
    groups = draft.facts.suggested(op.path)
    if not groups:
        raise NotFound(f"no open suggestion proposes {op.path!r}")
    target = _ensure_path(draft, op.path)
    ids = {item_id for group in groups for item_id in group.item_ids}
    items = [item for item in draft.facts.items(sorted(ids)) if item.leaf != target]
    draft.move_items(items, target)
    draft.suggestion = (op.path, "accepted")
    draft.summary = f"accept {op.path!r} ({len(ids)} items)"


def _ensure_path(draft: _Draft, path: str, ids: Sequence[int] = ()) -> int:
    """The node at `path`, creating it and any missing ancestor (with the given ids)."""
    parent = ROOT
    for depth, name in enumerate(paths.split(path), start=1):
        wanted = ids[depth - 1] if depth <= len(ids) else 0
        found = draft.child(parent, name)
        if found and wanted and wanted != found:
            prefix = paths.join(*paths.split(path)[:depth])
            raise FailedPrecondition(f"{prefix!r} has id #{found}, the text says #{wanted}")
        parent = found or draft.new_node(name, parent, wanted).id
    return parent


def _reject(draft: _Draft, op: Reject) -> None:
    if not draft.facts.suggested(op.path):
        raise NotFound(f"no open suggestion proposes {op.path!r}")
    draft.suggestion = (op.path, "rejected")
    draft.summary = f"reject {op.path!r}"


def _import(draft: _Draft, op: Import) -> None:
    entries = formats.parse(op.format, op.text)
    before = len(draft.after)
    for entry in entries:
        _ensure_path(draft, entry.path, entry.ids)
    for a, b in formats.parse_related(op.format, op.text):
        draft.related.add(pair(_ensure_path(draft, a), _ensure_path(draft, b)))
    draft.summary = f"import {len(entries)} paths ({len(draft.after) - before} new nodes)"


_PLANNERS: dict[type, Callable[[_Draft, Any], None]] = {
    AddNode: _add,
    Rename: _rename,
    MoveNode: _move,
    Merge: _merge,
    Split: _split,
    Reassign: _reassign,
    Retire: _retire,
    Relate: _relate,
    Unrelate: _unrelate,
    Revert: _revert,
    Accept: _accept,
    Reject: _reject,
    Import: _import,
}
