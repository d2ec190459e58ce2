"""The rerank of neighbours: drop those too far in the tree from the query, order the rest."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from common.errors import InvalidArgument, NotFound
from taxonomy_svc.tree import Tree

BELIEF = 0.1  # a query leaf at least this probable counts as what the query may be


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: str
    visual: float  # visual similarity, higher is closer
    leaf: str


@dataclass(frozen=True, slots=True)
class Ranked:
    item_id: str
    leaf: str
    score: float  # the combined score the order follows
    visual: float
    tree_distance: int  # edges to the nearest believed query leaf


@dataclass(frozen=True, slots=True)
class RerankResult:
    items: list[Ranked]
    dropped: int  # candidates too far from the query, or in a leaf the tree does not know


def rerank(
    tree: Tree,
    query_leaves: Sequence[tuple[str, float]],
    candidates: Sequence[Candidate],
    k: int,
    max_distance: int,
    visual_weight: float,
) -> RerankResult:
    """Drops candidates far from the query's believed leaves and orders the rest.

    The believed leaves are the query leaves with probability >= BELIEF (at least the most
    probable one). A candidate's closeness is the probability-weighted mean over them of
    1 - distance / (2 * height); its score is
    visual_weight * visual + (1 - visual_weight) * closeness.

    Args:
        tree: the taxonomy.
        query_leaves: (leaf path, probability) pairs for the query.
        candidates: neighbours; an item listed twice keeps its best visual score.
        k: how many to keep.
        max_distance: candidates further (in edges) from every believed leaf are dropped.
        visual_weight: share of the visual score in the combined score, in [0, 1].

    Returns:
        The best k by score (ties: visual score, then id) and the number dropped.

    Raises:
        InvalidArgument: k < 1, no query leaf, a probability outside [0, 1], an empty
            candidate id or a score that is not finite.
        NotFound: no believed query leaf is in the tree.
    """
    if k < 1:
        raise InvalidArgument(f"k must be at least 1, got {k}")
    believed = _believed(tree, query_leaves)
    placements: dict[str, tuple[int, float] | None] = {}
    ranked: list[Ranked] = []
    unique = _best_per_item(candidates)
    for candidate in unique:
        if candidate.leaf not in placements:
            placements[candidate.leaf] = _place(tree, believed, candidate.leaf, max_distance)
        placement = placements[candidate.leaf]
        if placement is not None:
            distance, closeness = placement
            score = visual_weight * candidate.visual + (1.0 - visual_weight) * closeness
            ranked.append(
                Ranked(candidate.item_id, candidate.leaf, score, candidate.visual, distance)
            )
    ranked.sort(key=lambda r: (-r.score, -r.visual, r.item_id))
    return RerankResult(items=ranked[:k], dropped=len(unique) - len(ranked))


def _believed(tree: Tree, query_leaves: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The believed leaves the tree knows, with their weights (summing to 1)."""
    if not query_leaves:
        raise InvalidArgument("the query has no leaf probabilities")
    probs: dict[str, float] = {}
    for leaf, prob in query_leaves:
        if not 0.0 <= prob <= 1.0:  # also refuses NaN
            raise InvalidArgument(f"query leaf {leaf!r} has probability {prob}, not in [0, 1]")
        probs[leaf] = max(prob, probs.get(leaf, 0.0))
    ordered = sorted(probs.items(), key=lambda pair: (-pair[1], pair[0]))
    believed = [pair for pair in ordered if pair[1] >= BELIEF] or ordered[:1]
    known = [pair for pair in believed if tree.contains(pair[0])]
    if not known:
        names = [leaf for leaf, _ in believed]
        raise NotFound(f"the taxonomy has none of the query's believed leaves {names}")
    total = sum(prob for _, prob in known)
    if total == 0.0:
        return [(leaf, 1.0 / len(known)) for leaf, _ in known]
    return [(leaf, prob / total) for leaf, prob in known]


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


def _place(
    tree: Tree, believed: list[tuple[str, float]], leaf: str, max_distance: int
) -> tuple[int, float] | None:
    """(distance to the nearest believed leaf, closeness), or None if the leaf is dropped."""
    if not tree.contains(leaf):
        return None
    distances = [tree.distance(query_leaf, leaf) for query_leaf, _ in believed]
    if min(distances) > max_distance:
        return None
    span = 2.0 * tree.height
    closeness = sum(w * (1.0 - d / span) for (_, w), d in zip(believed, distances, strict=True))
    return min(distances), closeness
