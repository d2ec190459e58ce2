"""The category tree in memory: a networkx DiGraph over taxonomy paths, read-only and pure."""

from collections.abc import Iterable

import networkx as nx

from common import paths
from common.errors import NotFound

ROOT = ""  # the implicit node above the top-level nodes; never reported as a node


class Tree:
    """A rooted tree whose nodes are paths ("Apparel/Topwear/Tshirts"), edges parent -> child.

    A node's ancestors are the prefixes of its path, so distances come from the path names
    in O(depth) rather than from a graph search.
    """

    def __init__(self, graph: nx.DiGraph) -> None:
        self._graph = graph
        self._names = {node: tuple(paths.split(node)) for node in graph if node != ROOT}
        self._leaves = frozenset(n for n in self._names if graph.out_degree(n) == 0)
        self.height = max(map(len, self._names.values()), default=0)

    @classmethod
    def from_paths(cls, node_paths: Iterable[str]) -> "Tree":
        """Builds the tree holding every path and every prefix of one.

        Raises:
            InvalidArgument: a path is empty or has an empty segment.
        """
        graph = nx.DiGraph()
        graph.add_node(ROOT)
        for path in node_paths:
            parent = ROOT
            for name in paths.split(path):
                node = paths.join(parent, name) if parent else name
                graph.add_edge(parent, node)
                parent = node
        return cls(graph)

    def nodes(self) -> list[str]:
        """Every node, parents before children (by depth, then path)."""
        return sorted(self._names, key=lambda node: (len(self._names[node]), node))

    def leaves(self) -> list[str]:
        """The nodes without children, sorted."""
        return sorted(self._leaves)

    def contains(self, path: str) -> bool:
        return path in self._names

    def is_leaf(self, path: str) -> bool:
        self._path_names(path)
        return path in self._leaves

    def depth(self, path: str) -> int:
        """1 for a top-level node."""
        return len(self._path_names(path))

    def parent(self, path: str) -> str:
        """The parent's path; empty for a top-level node."""
        return paths.join(*self._path_names(path)[:-1])

    def children(self, path: str) -> list[str]:
        self._path_names(path)
        return sorted(self._graph.successors(path))

    def ancestors(self, path: str) -> list[str]:
        """The node's ancestors, root-most first, itself and the implicit root excluded."""
        names = self._path_names(path)
        return [paths.join(*names[:depth]) for depth in range(1, len(names))]

    def distance(self, a: str, b: str) -> int:
        """Edges on the path between two nodes through their lowest common ancestor."""
        names_a, names_b = self._path_names(a), self._path_names(b)
        common = 0
        for name_a, name_b in zip(names_a, names_b, strict=False):
            if name_a != name_b:
                break
            common += 1
        return len(names_a) + len(names_b) - 2 * common

    def _path_names(self, path: str) -> tuple[str, ...]:
        try:
            return self._names[path]
        except KeyError:
            raise NotFound(f"the taxonomy has no node {path!r}") from None
