"""The rerank: which neighbours are dropped, how the rest are scored and ordered."""

import math

import pytest

from common.errors import InvalidArgument, NotFound
from taxonomy_svc.rerank import Candidate, RerankResult, Settings, Step, rerank
from taxonomy_svc.tree import Node, Tree

TSHIRTS = "Apparel/Topwear/Tshirts"
SHIRTS = "Apparel/Topwear/Shirts"
JEANS = "Apparel/Bottomwear/Jeans"
SHOES = "Footwear/Shoes/Casual Shoes"


@pytest.fixture
def tree() -> Tree:
    return Tree.from_paths([TSHIRTS, SHIRTS, JEANS, SHOES])


def _ids(result: RerankResult) -> list[str]:
    return [ranked.item_id for ranked in result.items]


def test_candidates_beyond_max_distance_are_dropped_and_counted(tree: Tree) -> None:
    candidates = [
        Candidate("same", 0.5, TSHIRTS),
        Candidate("sibling", 0.5, SHIRTS),
        Candidate("cousin", 0.5, JEANS),
        Candidate("other", 0.9, SHOES),
    ]
    result = rerank(tree, [(TSHIRTS, 1.0)], candidates, 10, Settings(2, 0.5))
    assert _ids(result) == ["same", "sibling"]
    assert result.dropped == 2
    assert [r.tree_distance for r in result.items] == [0, 2]


def test_candidates_in_leaves_the_tree_does_not_know_are_dropped(tree: Tree) -> None:
    candidates = [Candidate("a", 0.9, "Apparel/Gone"), Candidate("b", 0.1, TSHIRTS)]
    result = rerank(tree, [(TSHIRTS, 1.0)], candidates, 10, Settings(6, 0.5))
    assert _ids(result) == ["b"]
    assert result.dropped == 1


def test_score_mixes_visual_and_closeness(tree: Tree) -> None:
    result = rerank(tree, [(TSHIRTS, 1.0)], [Candidate("c", 0.8, JEANS)], 10, Settings(6, 0.7))
    # closeness = 1 - 4 / (2 * 3)
    assert result.items[0].score == pytest.approx(0.7 * 0.8 + 0.3 * (1 - 4 / 6))
    assert result.items[0].visual == 0.8


def test_closeness_is_the_probability_weighted_mean_over_believed_leaves(tree: Tree) -> None:
    query = [(TSHIRTS, 0.6), (JEANS, 0.3), (SHOES, 0.05)]  # SHOES is below belief
    result = rerank(tree, query, [Candidate("c", 0.0, SHIRTS)], 10, Settings(6, 0.0))
    closeness = (0.6 * (1 - 2 / 6) + 0.3 * (1 - 4 / 6)) / 0.9
    assert result.items[0].score == pytest.approx(closeness)
    assert result.items[0].tree_distance == 2


def test_tree_distance_is_to_the_nearest_believed_leaf(tree: Tree) -> None:
    query = [(TSHIRTS, 0.5), (SHOES, 0.5)]
    result = rerank(tree, query, [Candidate("c", 0.5, SHOES)], 10, Settings(2, 0.5))
    assert result.items[0].tree_distance == 0
    assert result.items[0].score == pytest.approx(0.25 + 0.5 * (0.5 * 1.0 + 0.5 * 0.0))


def test_the_most_probable_leaf_is_believed_even_below_the_threshold(tree: Tree) -> None:
    query = [(SHOES, 0.05), (TSHIRTS, 0.08)]
    candidates = [Candidate("shirt", 0.1, SHIRTS), Candidate("shoe", 0.9, SHOES)]
    result = rerank(tree, query, candidates, 10, Settings(2, 0.5))
    assert _ids(result) == ["shirt"]
    assert result.dropped == 1


def test_unlikely_query_leaves_do_not_rescue_far_candidates(tree: Tree) -> None:
    query = [(TSHIRTS, 0.9), (SHOES, 0.09)]
    result = rerank(tree, query, [Candidate("shoe", 0.9, SHOES)], 10, Settings(2, 0.5))
    assert result.items == []
    assert result.dropped == 1


def test_order_is_score_then_visual_then_id_and_keeps_k(tree: Tree) -> None:
    candidates = [
        Candidate("b", 0.5, TSHIRTS),
        Candidate("a", 0.5, TSHIRTS),
        Candidate("far-but-vivid", 0.9, JEANS),
        Candidate("best", 0.95, TSHIRTS),
    ]
    result = rerank(tree, [(TSHIRTS, 1.0)], candidates, 3, Settings(6, 0.5))
    # far-but-vivid: 0.45 + 0.5 * (1/3) = 0.617 < a, b: 0.75 < best: 0.975
    assert _ids(result) == ["best", "a", "b"]
    assert result.dropped == 0


def test_equal_scores_within_a_step_order_by_id() -> None:
    tree = Tree.from_paths(["A/X", "A/Y"])  # height 2: closeness 1 - d/4
    candidates = [
        Candidate("near", 0.25, "A/X"),  # 0.125 + 0.5 * 0.75 (X: 1, Y: 0.5, weighted)
        Candidate("vivid-b", 0.75, "A/X"),  # 0.375 + 0.375
        Candidate("vivid-a", 0.75, "A/X"),
    ]
    query = [("A/X", 0.5), ("A/Y", 0.5)]
    result = rerank(tree, query, candidates, 10, Settings(2, 0.5))
    assert [r.score for r in result.items] == pytest.approx([0.75, 0.75, 0.5])
    assert _ids(result) == ["vivid-a", "vivid-b", "near"]


def test_backoff_fills_from_the_believed_leaves_then_widens_step_by_step(tree: Tree) -> None:
    candidates = [
        Candidate("cousin", 0.99, JEANS),
        Candidate("sibling", 0.9, SHIRTS),
        Candidate("same", 0.1, TSHIRTS),
    ]
    result = rerank(tree, [(TSHIRTS, 1.0)], candidates, 10, Settings(4, 0.9))
    assert _ids(result) == ["same", "sibling", "cousin"]
    assert [r.step for r in result.items] == [Step.LEAF, Step.SIBLING, Step.SUBTREE]


def test_backoff_stops_at_the_widest_step(tree: Tree) -> None:
    candidates = [Candidate("sibling", 0.9, SHIRTS), Candidate("cousin", 0.99, JEANS)]
    result = rerank(tree, [(TSHIRTS, 1.0)], candidates, 10, Settings(4, 0.5, Step.SIBLING))
    assert _ids(result) == ["sibling"]
    assert result.dropped == 1


def _related_tree() -> Tree:
    nodes = [
        Node(1, "Footwear"),
        Node(2, "Sandal", 1),
        Node(3, "Sandals", 2),
        Node(4, "Flip Flops", 1),
        Node(5, "Flip Flops", 4),
        Node(6, "Apparel"),
        Node(7, "Topwear", 6),
        Node(8, "Tshirts", 7),
    ]
    return Tree(nodes, related=[(3, 5)])


def test_a_related_link_counts_as_one_edge_and_says_which_link() -> None:
    tree = _related_tree()
    candidates = [Candidate("flop", 0.5, "Footwear/Flip Flops/Flip Flops")]
    result = rerank(tree, [("Footwear/Sandal/Sandals", 1.0)], candidates, 10, Settings(1, 0.5))
    (flop,) = result.items
    assert flop.tree_distance == 1
    assert flop.step == Step.RELATED
    assert flop.related_via == "Footwear/Sandal/Sandals <-> Footwear/Flip Flops/Flip Flops"


def test_without_the_link_the_same_candidate_is_too_far() -> None:
    tree = Tree(_related_tree().all_nodes())
    candidates = [Candidate("flop", 0.5, "Footwear/Flip Flops/Flip Flops")]
    result = rerank(tree, [("Footwear/Sandal/Sandals", 1.0)], candidates, 10, Settings(1, 0.5))
    assert result.items == []


def test_categories_keep_only_items_inside_them() -> None:
    tree = _related_tree()
    candidates = [
        Candidate("flop", 0.5, "Footwear/Flip Flops/Flip Flops"),
        Candidate("sandal", 0.5, "Footwear/Sandal/Sandals"),
    ]
    query = [("Footwear/Sandal/Sandals", 1.0)]
    result = rerank(tree, query, candidates, 10, Settings(4, 0.5), ["Footwear/Flip Flops"])
    assert _ids(result) == ["flop"]


def test_an_archived_query_leaf_resolves_to_the_node_that_replaced_it() -> None:
    nodes = [*_related_tree().all_nodes(), Node(9, "Old Sandals", 2, archived=True, replaced_by=3)]
    tree = Tree(nodes)
    candidates = [Candidate("sandal", 0.5, "Footwear/Sandal/Sandals")]
    result = rerank(tree, [("Footwear/Sandal/Old Sandals", 1.0)], candidates, 10, Settings(0, 0.5))
    assert [(r.item_id, r.step) for r in result.items] == [("sandal", Step.LEAF)]


def test_duplicate_candidates_keep_their_best_visual_score(tree: Tree) -> None:
    candidates = [
        Candidate("x", 0.3, TSHIRTS),
        Candidate("x", 0.8, TSHIRTS),
        Candidate("x", 0.5, TSHIRTS),
        Candidate("far", 0.9, SHOES),
        Candidate("far", 0.95, SHOES),
    ]
    result = rerank(tree, [(TSHIRTS, 1.0)], candidates, 10, Settings(4, 0.5))
    assert _ids(result) == ["x"]
    assert result.items[0].visual == 0.8
    assert result.dropped == 1  # "far" counted once


def test_query_leaves_the_tree_does_not_know_are_ignored(tree: Tree) -> None:
    query = [("Apparel/Retired", 0.5), (TSHIRTS, 0.4)]
    result = rerank(tree, query, [Candidate("c", 0.5, TSHIRTS)], 10, Settings(0, 0.5))
    assert result.items[0].score == pytest.approx(0.25 + 0.5)


def test_a_retired_likeliest_leaf_falls_back_to_the_likeliest_known_one(tree: Tree) -> None:
    query = [("Apparel/Retired", 0.9), (TSHIRTS, 0.05)]
    result = rerank(tree, query, [Candidate("c", 0.5, TSHIRTS)], 10, Settings(0, 0.5))
    assert [(r.item_id, r.step) for r in result.items] == [("c", Step.LEAF)]


def test_no_known_query_leaf_is_not_found(tree: Tree) -> None:
    with pytest.raises(NotFound, match="Apparel/Retired"):
        rerank(tree, [("Apparel/Retired", 0.9)], [], 10, Settings(4, 0.5))


def test_no_candidates_gives_an_empty_result(tree: Tree) -> None:
    result = rerank(tree, [(TSHIRTS, 1.0)], [], 10, Settings(4, 0.5))
    assert result.items == []
    assert result.dropped == 0


@pytest.mark.parametrize(
    ("query", "candidates", "k", "message"),
    [
        ([(TSHIRTS, 1.0)], [], 0, "k must be"),
        ([], [], 5, "no leaf"),
        ([(TSHIRTS, 1.5)], [], 5, "probability"),
        ([(TSHIRTS, -0.1)], [], 5, "probability"),
        ([(TSHIRTS, math.nan)], [], 5, "probability"),
        ([(TSHIRTS, 1.0)], [Candidate("", 0.5, TSHIRTS)], 5, "empty item id"),
        ([(TSHIRTS, 1.0)], [Candidate("x", math.nan, TSHIRTS)], 5, "score"),
    ],
)
def test_bad_input_is_an_invalid_argument(
    tree: Tree,
    query: list[tuple[str, float]],
    candidates: list[Candidate],
    k: int,
    message: str,
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        rerank(tree, query, candidates, k, Settings(4, 0.5))
