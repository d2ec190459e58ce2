"""The category tree in memory: nodes with stable ids, paths derived, immutable and pure.

A `Tree` is built from node states (the database's rows, or a version's as rebuilt from the
audit log) and never changes; an edit builds a new one. Paths ("Apparel/Topwear/Tshirts")
are derived from the parent links, so a rename or a move changes one node, not its subtree.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import networkx as nx

from common import paths
from common.errors import FailedPrecondition, NotFound

ROOT = 0  # the implicit node above the top-level nodes; never a real node's id

Pair = tuple[int, int]  # a related link, the smaller id first


@dataclass(frozen=True, slots=True)
class Node:
    """One node's state: everything the database keeps about it."""

    id: int
    name: str
    parent: int = ROOT  # ROOT for a top-level node
    archived: bool = False
    replaced_by: int = 0  # an archived node's successor, 0 if none


def pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


class Tree:
    """A rooted tree of the active nodes, with the archived ones kept readable beside it.

    Every active node's ancestors (ids, root-most first) are computed once, so depth, paths
    and distances cost O(depth) and no graph search.
    """

    def __init__(
        self,
        nodes: Iterable[Node],
        related: Iterable[Pair] = (),
        former: Mapping[str, int] = MappingProxyType({}),
    ) -> None:
        """Args:
        nodes: every node's state, archived ones included.
        related: the curated links, as pairs of ids.
        former: paths nodes had before a rename or move (of themselves or an ancestor), so
            that a path from before an edit (a model's prediction, a seller's leaf) resolves.
        """
        self._nodes = {node.id: node for node in nodes}
        self.graph = nx.DiGraph()
        self.graph.add_node(ROOT)
        active = [node for node in self._nodes.values() if not node.archived]
        self.graph.add_nodes_from(node.id for node in active)
        self.graph.add_edges_from((node.parent, node.id) for node in active)
        self._chains, self._paths = self._walk()
        self._by_path = {path: i for i, path in self._paths.items()}
        self._archived_paths = {
            self._last_path(node.id): node.id for node in self._nodes.values() if node.archived
        }
        self.related = frozenset(pair(a, b) for a, b in related)
        self.former = dict(former)
        self.height = max((len(chain) for chain in self._chains.values()), default=0)

    @classmethod
    def from_paths(cls, node_paths: Iterable[str]) -> "Tree":
        """The tree holding every path and every prefix of one, ids given in path order.

        Raises:
            InvalidArgument: a path is empty or has an empty segment.
        """
        ids: dict[str, int] = {}
        nodes: list[Node] = []
        for path in sorted(node_paths):
            names = paths.split(path)
            for depth in range(1, len(names) + 1):
                prefix = paths.join(*names[:depth])
                if prefix not in ids:
                    ids[prefix] = len(ids) + 1
                    parent = ids[paths.join(*names[: depth - 1])] if depth > 1 else ROOT
                    nodes.append(Node(ids[prefix], names[depth - 1], parent))
        return cls(nodes)

    # Reading by id.

    def node(self, node_id: int) -> Node:
        """A node by id, archived ones included.

        Raises:
            NotFound: no node ever had this id.
        """
        try:
            return self._nodes[node_id]
        except KeyError:
            raise NotFound(f"the taxonomy has no node #{node_id}") from None

    def all_nodes(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def active_ids(self) -> list[int]:
        """Every active node, parents before children (by depth, then path)."""
        return sorted(self._chains, key=lambda i: (len(self._chains[i]), self._paths[i]))

    def is_active(self, node_id: int) -> bool:
        return node_id in self._chains

    def path_of(self, node_id: int) -> str:
        """The node's path; an archived node's path is where it was when retired."""
        if node_id in self._paths:
            return self._paths[node_id]
        return self._last_path(self.node(node_id).id)

    def chain(self, node_id: int) -> tuple[int, ...]:
        """The active node's ancestors and itself, root-most first."""
        try:
            return self._chains[node_id]
        except KeyError:
            raise NotFound(f"node #{node_id} is not in the current tree") from None

    def child_ids(self, node_id: int) -> list[int]:
        return sorted(self.graph.successors(node_id), key=lambda i: self._nodes[i].name)

    def subtree(self, node_id: int) -> list[int]:
        """The node and every active node beneath it."""
        self.chain(node_id)
        return [node_id, *nx.descendants(self.graph, node_id)]

    def leaf_ids(self) -> list[int]:
        return [i for i in self._chains if self.graph.out_degree(i) == 0]

    def id_of(self, path: str) -> int:
        """The active node at `path`.

        Raises:
            NotFound: no active node has this path.
        """
        try:
            return self._by_path[path]
        except KeyError:
            raise NotFound(f"the taxonomy has no node {path!r}") from None

    def resolve(self, node_id: int) -> int:
        """Where an archived node's items went: the end of its replaced_by chain, if active.

        Raises:
            NotFound: the node is archived and nothing active replaced it.
        """
        seen = {node_id}
        while not self.is_active(node_id):
            node_id = self.node(node_id).replaced_by
            if node_id == 0 or node_id in seen:
                raise NotFound(f"node #{min(seen)} was retired and nothing replaced it")
            seen.add(node_id)
        return node_id

    def find(self, path: str) -> int:
        """The node at `path`: the active one, else the archived one last there.

        Raises:
            NotFound: no node ever had this path.
        """
        found = self._by_path.get(path) or self._archived_paths.get(path)
        if found is None:
            raise NotFound(f"the taxonomy has no node {path!r}")
        return found

    def resolve_path(self, path: str) -> int:
        """The active node at `path`, else the one that replaced the archived node there, else
        the node that had this path before an edit renamed or moved it."""
        if path in self._by_path:
            return self._by_path[path]
        if path in self._archived_paths:
            return self.resolve(self._archived_paths[path])
        if path in self.former:
            return self.resolve(self.former[path])
        raise NotFound(f"the taxonomy has no node {path!r}")

    def old_paths(self) -> dict[str, int]:
        """Every path no active node has now, with the active node it resolves to (if any)."""
        found: dict[str, int] = {}
        for path in [*self._archived_paths, *self.former]:
            if path not in self._by_path:
                try:
                    found[path] = self.resolve_path(path)
                except NotFound:
                    continue
        return {path: node for path, node in found.items() if self.is_active(node)}

    def moved_paths(self, new: "Tree", node_ids: Iterable[int]) -> dict[str, int]:
        """The paths in this tree of the given nodes and everything beneath them that `new`
        puts elsewhere: what a rename or move leaves behind as former paths."""
        left: dict[str, int] = {}
        for node_id in node_ids:
            if self.is_active(node_id):
                for member in self.subtree(node_id):
                    path = self._paths[member]
                    if not new.is_active(member) or new.path_of(member) != path:
                        left[path] = member
        return left

    def related_to(self, node_id: int) -> list[int]:
        return sorted(b if a == node_id else a for a, b in self.related if node_id in (a, b))

    def check(self) -> None:
        """Refuses a state that is not a tree or has two siblings of one name.

        Raises:
            FailedPrecondition: naming the first offending node.
        """
        for node in self._nodes.values():
            if not node.archived and node.id not in self._chains:
                raise FailedPrecondition(
                    f"node #{node.id} ({node.name!r}) would not hang from the root: "
                    f"its parent #{node.parent} is missing, archived, or beneath it"
                )
        names: dict[tuple[int, str], int] = {}
        for node_id in self._chains:
            node = self._nodes[node_id]
            key = (node.parent, node.name.casefold())
            if key in names:
                raise FailedPrecondition(
                    f"{self._paths[node_id]!r} would have a sibling of the same name "
                    f"(#{names[key]} and #{node_id})"
                )
            names[key] = node_id
        for a, b in self.related:
            if not (self.is_active(a) and self.is_active(b)):
                raise FailedPrecondition(f"related link #{a} <-> #{b} names an archived node")

    # Reading by path: what the rerank and the gateway speak.

    def nodes(self) -> list[str]:
        """Every active node's path, parents before children (by depth, then path)."""
        return [self._paths[i] for i in self.active_ids()]

    def leaves(self) -> list[str]:
        """The active nodes without children, sorted."""
        return sorted(self._paths[i] for i in self.leaf_ids())

    def contains(self, path: str) -> bool:
        return path in self._by_path

    def is_leaf(self, path: str) -> bool:
        return self.graph.out_degree(self.id_of(path)) == 0

    def depth(self, path: str) -> int:
        """1 for a top-level node."""
        return len(self._chains[self.id_of(path)])

    def parent(self, path: str) -> str:
        """The parent's path; empty for a top-level node."""
        parent = self._nodes[self.id_of(path)].parent
        return self._paths[parent] if parent else ""

    def children(self, path: str) -> list[str]:
        return sorted(self._paths[i] for i in self.graph.successors(self.id_of(path)))

    def ancestors(self, path: str) -> list[str]:
        """The node's ancestors, root-most first, itself and the implicit root excluded."""
        return [self._paths[i] for i in self._chains[self.id_of(path)][:-1]]

    def distance(self, a: str, b: str) -> int:
        """Edges on the path between two nodes through their lowest common ancestor."""
        return self.id_distance(self.id_of(a), self.id_of(b))

    def id_distance(self, a: int, b: int) -> int:
        chain_a, chain_b = self.chain(a), self.chain(b)
        common = 0
        for node_a, node_b in zip(chain_a, chain_b, strict=False):
            if node_a != node_b:
                break
            common += 1
        return len(chain_a) + len(chain_b) - 2 * common

    def _walk(self) -> tuple[dict[int, tuple[int, ...]], dict[int, str]]:
        """Every node reached from the root: its chain of ancestors and its path."""
        chains: dict[int, tuple[int, ...]] = {}
        found: dict[int, str] = {}
        stack: list[int] = [ROOT]
        while stack:
            node_id = stack.pop()
            chain, path = chains.get(node_id, ()), found.get(node_id, "")
            for child in self.graph.successors(node_id):
                if child not in chains:  # a cycle's nodes are never reached from the root
                    chains[child] = (*chain, child)
                    name = self._nodes[child].name
                    found[child] = paths.join(path, name) if path else name
                    stack.append(child)
        return chains, found

    def _last_path(self, node_id: int) -> str:
        """An archived node's path through its recorded parents, whatever their state."""
        names: list[str] = []
        seen: set[int] = set()
        while node_id != ROOT and node_id in self._nodes and node_id not in seen:
            seen.add(node_id)
            node = self._nodes[node_id]
            names.append(node.name)
            node_id = node.parent
        return paths.join(*reversed(names))
