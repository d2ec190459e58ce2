"""The in-memory category tree: structure, ancestors and distances."""

import pytest

from common.errors import InvalidArgument, NotFound
from taxonomy_svc.tree import Tree

PATHS = [
    "Apparel/Topwear/Tshirts",
    "Apparel/Topwear/Shirts",
    "Apparel/Bottomwear/Jeans",
    "Footwear/Shoes/Casual Shoes",
]


@pytest.fixture
def tree() -> Tree:
    return Tree.from_paths(PATHS)


def test_every_prefix_is_a_node_parents_first(tree: Tree) -> None:
    assert tree.nodes() == [
        "Apparel",
        "Footwear",
        "Apparel/Bottomwear",
        "Apparel/Topwear",
        "Footwear/Shoes",
        "Apparel/Bottomwear/Jeans",
        "Apparel/Topwear/Shirts",
        "Apparel/Topwear/Tshirts",
        "Footwear/Shoes/Casual Shoes",
    ]


def test_leaves_are_the_nodes_without_children(tree: Tree) -> None:
    assert tree.leaves() == sorted(PATHS)
    assert tree.is_leaf("Apparel/Topwear/Tshirts")
    assert not tree.is_leaf("Apparel/Topwear")


def test_contains_knows_nodes_but_not_the_implicit_root(tree: Tree) -> None:
    assert tree.contains("Apparel/Topwear")
    assert not tree.contains("Apparel/Topwear/Socks")
    assert not tree.contains("")


def test_ancestors_are_root_most_first_without_the_node(tree: Tree) -> None:
    assert tree.ancestors("Apparel/Topwear/Tshirts") == ["Apparel", "Apparel/Topwear"]
    assert tree.ancestors("Apparel") == []


def test_parent_depth_children(tree: Tree) -> None:
    assert tree.parent("Apparel/Topwear") == "Apparel"
    assert tree.parent("Apparel") == ""
    assert tree.depth("Apparel/Topwear/Tshirts") == 3
    assert tree.children("Apparel/Topwear") == ["Apparel/Topwear/Shirts", "Apparel/Topwear/Tshirts"]


@pytest.mark.parametrize(
    ("a", "b", "edges"),
    [
        ("Apparel/Topwear/Tshirts", "Apparel/Topwear/Tshirts", 0),
        ("Apparel/Topwear/Tshirts", "Apparel/Topwear/Shirts", 2),  # siblings
        ("Apparel/Topwear/Tshirts", "Apparel/Bottomwear/Jeans", 4),  # cousins
        ("Apparel/Topwear/Tshirts", "Footwear/Shoes/Casual Shoes", 6),  # other master
        ("Apparel/Topwear/Tshirts", "Apparel/Topwear", 1),  # parent
        ("Apparel/Topwear/Tshirts", "Footwear", 4),
    ],
)
def test_distance_counts_edges_through_the_lowest_common_ancestor(
    tree: Tree, a: str, b: str, edges: int
) -> None:
    assert tree.distance(a, b) == edges
    assert tree.distance(b, a) == edges


def test_distance_compares_whole_names_not_prefixes_of_names() -> None:
    tree = Tree.from_paths(["Bags/Hand", "Bags/Handbags"])
    assert tree.distance("Bags/Hand", "Bags/Handbags") == 2


def test_same_leaf_name_under_two_parents_are_two_nodes() -> None:
    tree = Tree.from_paths(["Accessories/Wallets/Wallets", "Free Items/Free Gifts/Wallets"])
    assert tree.distance("Accessories/Wallets/Wallets", "Free Items/Free Gifts/Wallets") == 6


def test_height_is_the_depth_of_the_deepest_node(tree: Tree) -> None:
    assert tree.height == 3
    assert Tree.from_paths(["A/B", "C"]).height == 2
    assert Tree.from_paths([]).height == 0


def test_unknown_paths_raise_not_found(tree: Tree) -> None:
    for call in (
        lambda: tree.ancestors("Apparel/Socks"),
        lambda: tree.distance("Apparel/Topwear/Tshirts", "Nope"),
        lambda: tree.is_leaf("Nope"),
        lambda: tree.parent(""),
    ):
        with pytest.raises(NotFound):
            call()


def test_malformed_paths_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        Tree.from_paths(["Apparel//Tshirts"])
    with pytest.raises(InvalidArgument):
        Tree.from_paths([""])
