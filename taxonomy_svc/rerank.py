"""The rerank of neighbours: drop those too far in the tree from the query, order the rest.

Hierarchy back-off: candidates in the query's believed leaves come first; when they are
fewer than k, the result widens step by step (sibling leaves, then further up the believed
leaves' ancestors, then nodes an editor related to them) until it has k or reaches the
configured widest step. Within a step the order is the combined score

    score = visual_weight * visual + (1 - visual_weight) * closeness

where closeness is the probability-weighted mean over the believed leaves of
1 - distance / (2 * height), and a related link counts as one edge between its two nodes.
Each result says its step, its tree distance and the related link that let it in.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from common.errors import InvalidArgument, NotFound
from common.routing import BELIEF
from taxonomy_svc.tree import Tree


class Step(IntEnum):
    LEAF = 0
    SIBLING = 1
    SUBTREE = 2
    RELATED = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: str
    visual: float  # visual similarity, higher is closer
    leaf: str


@dataclass(frozen=True, slots=True)
class Ranked:
    item_id: str
    leaf: str
    score: float  # the combined score the order follows within a step
    visual: float
    tree_distance: int  # edges to the nearest believed query leaf (a related link: one edge)
    step: Step = Step.LEAF
    related_via: str = ""  # "A <-> B" when a related link let the item in


@dataclass(frozen=True, slots=True)
class RerankResult:
    items: list[Ranked]
    dropped: int  # candidates too far, outside the categories, or in an unknown leaf


@dataclass(frozen=True, slots=True)
class Settings:
    max_distance: int = 4  # candidates further (in edges) from every believed leaf are dropped
    visual_weight: float = 0.7  # share of the visual score in the combined score, in [0, 1]
    widest_step: Step = Step.RELATED  # the back-off stops here


@dataclass(frozen=True, slots=True)
class _Placement:
    distance: int
    closeness: float
    step: Step
    related_via: str


def rerank(
    tree: Tree,
    query_leaves: Sequence[tuple[str, float]],
    candidates: Sequence[Candidate],
    k: int,
    settings: Settings = Settings(),
    categories: Sequence[str] = (),
    leaves: Mapping[str, str] = MappingProxyType({}),
) -> RerankResult:
    """Drops candidates far from the query's believed leaves and orders the rest by step.

    Args:
        tree: the taxonomy; archived leaves in the query resolve to their successors.
        query_leaves: (leaf path, probability) pairs for the query.
        candidates: neighbours; an item listed twice keeps its best visual score.
        k: how many to keep.
        settings: distances, weights and the widest back-off step.
        categories: if given, only candidates inside these nodes are kept.
        leaves: the record's leaf of each item it holds, which wins over a candidate's own.

    Returns:
        The best k by (step, score, visual score, id) and the number dropped.

    Raises:
        InvalidArgument: k < 1, no query leaf, a probability outside [0, 1], an empty
            candidate id or a score that is not finite.
        NotFound: no believed query leaf is in the tree, or a category is unknown.
    """
    if k < 1:
        raise InvalidArgument(f"k must be at least 1, got {k}")
    placer = _Placer(tree, _believed(tree, query_leaves), settings)
    inside = {tree.resolve_path(category) for category in categories}
    placements: dict[str, _Placement | None] = {}
    weight = settings.visual_weight
    kept: list[tuple[Step, float, float, str, str, _Placement]] = []  # the sort key first
    unique = _best_per_item(candidates)
    for candidate in unique:
        leaf = leaves.get(candidate.item_id, candidate.leaf)
        if leaf not in placements:
            placements[leaf] = placer.place(leaf, inside)
        placement = placements[leaf]
        if placement is not None:
            score = weight * candidate.visual + (1.0 - weight) * placement.closeness
            kept.append(
                (placement.step, -score, -candidate.visual, candidate.item_id, leaf, placement)
            )
    kept.sort(key=lambda entry: entry[:4])
    items = [
        Ranked(item_id, leaf, -score, -visual, place.distance, step, place.related_via)
        for step, score, visual, item_id, leaf, place in kept[:k]
    ]
    return RerankResult(items=items, dropped=len(unique) - len(kept))


class _Placer:
    """Where candidate leaves stand from the believed query leaves."""

    def __init__(self, tree: Tree, believed: list[tuple[int, float]], settings: Settings) -> None:
        self._tree = tree
        self._believed = believed
        self._settings = settings
        self._parents = {tree.node(leaf).parent for leaf, _ in believed}
        # For each believed leaf: (a node related to one of its ancestors, edges to reach it).
        self._anchors = [self._anchors_of(leaf) for leaf, _ in believed]

    def place(self, leaf_path: str, inside: set[int]) -> _Placement | None:
        tree = self._tree
        if not tree.contains(leaf_path):
            return None
        leaf = tree.id_of(leaf_path)
        chain = tree.chain(leaf)
        if inside and not inside.intersection(chain):
            return None
        distances: list[int] = []
        tree_distance = math.inf
        best_link = (math.inf, "")
        for (query, _), anchors in zip(self._believed, self._anchors, strict=True):
            link = _via_links(chain, anchors)
            through_tree = tree.id_distance(query, leaf)
            distances.append(int(min(through_tree, link[0])))
            tree_distance = min(tree_distance, through_tree)
            best_link = min(best_link, link)
        distance = min(distances)
        if distance > self._settings.max_distance:
            return None
        step = self._step(leaf, distance, tree_distance, best_link[0])
        if step > self._settings.widest_step:
            return None
        span = 2.0 * tree.height
        closeness = sum(
            w * (1.0 - d / span) for (_, w), d in zip(self._believed, distances, strict=True)
        )
        via = best_link[1] if step == Step.RELATED else ""
        return _Placement(distance, closeness, step, via)

    def _step(self, leaf: int, distance: int, tree_distance: float, link: float) -> Step:
        if link < tree_distance:
            return Step.RELATED
        if distance == 0:
            return Step.LEAF
        if self._tree.node(leaf).parent in self._parents:
            return Step.SIBLING
        return Step.SUBTREE

    def _anchors_of(self, leaf: int) -> list[tuple[int, int, str]]:
        tree = self._tree
        chain = tree.chain(leaf)
        anchors: list[tuple[int, int, str]] = []
        for up, ancestor in enumerate(reversed(chain)):
            for other in tree.related_to(ancestor):
                label = f"{tree.path_of(ancestor)} <-> {tree.path_of(other)}"
                anchors.append((other, up + 1, label))
        return anchors


def _via_links(chain: tuple[int, ...], anchors: list[tuple[int, int, str]]) -> tuple[float, str]:
    """Edges from a believed leaf to a candidate through one related link, and the link."""
    best: tuple[float, str] = (math.inf, "")
    for other, cost, label in anchors:
        if other in chain:
            down = len(chain) - 1 - chain.index(other)
            best = min(best, (cost + down, label))
    return best


def _believed(tree: Tree, query_leaves: Sequence[tuple[str, float]]) -> list[tuple[int, float]]:
    """The believed leaves, with weights summing to 1: the known ones (old paths resolved) at
    least BELIEF probable, or else the most probable known one, so that a leaf retired since
    the model was trained does not leave a query with nothing."""
    if not query_leaves:
        raise InvalidArgument("the query has no leaf probabilities")
    known: dict[int, float] = {}
    for leaf, prob in query_leaves:
        if not 0.0 <= prob <= 1.0:  # also refuses NaN
            raise InvalidArgument(f"query leaf {leaf!r} has probability {prob}, not in [0, 1]")
        try:
            node = tree.resolve_path(leaf)
        except NotFound:
            continue
        known[node] = max(prob, known.get(node, 0.0))
    if not known:
        names = sorted({leaf for leaf, _ in query_leaves})
        raise NotFound(f"the taxonomy has none of the query's leaves {names}")
    ordered = sorted(known.items(), key=lambda pair: (-pair[1], pair[0]))
    believed = [pair for pair in ordered if pair[1] >= BELIEF] or ordered[:1]
    total = sum(prob for _, prob in believed)
    if total == 0.0:
        return [(node, 1.0 / len(believed)) for node, _ in believed]
    return [(node, prob / total) for node, prob in believed]


def _best_per_item(candidates: Sequence[Candidate]) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for candidate in candidates:
        if not candidate.item_id:
            raise InvalidArgument("a candidate has an empty item id")
        if not math.isfinite(candidate.visual):
            raise InvalidArgument(f"candidate {candidate.item_id!r} has score {candidate.visual}")
        kept = best.get(candidate.item_id)
        if kept is None or candidate.visual > kept.visual:
            best[candidate.item_id] = candidate
    return list(best.values())
